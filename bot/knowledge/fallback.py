"""What the fallback offers when nothing was understood: the two or three likeliest topics, never a dead end.

Pure: it reads the NLU result (Rasa's `parse` shape: `intent_ranking`, `response_selector`) and the search's
hits, and returns buttons; the action adds "talk to a person" after them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.knowledge._faq import is_retrieval_intent, load_faq, topic_for_intent
from bot.knowledge.search import Hit

__all__ = ["Suggestion", "FLOW_TITLES", "suggestions", "faq_key"]


@dataclass(frozen=True)
class Suggestion:
    """One button: what it says and what it sends (an intent payload, or a question NLU knows by heart)."""

    title: str
    payload: str


# Steps of the flow a confused user may have meant, as a user would say them. Chit-chat, yes/no and the
# hand-off are left out: the hand-off is always offered anyway.
FLOW_TITLES: Final[Mapping[str, str]] = {
    "sync_stopped": "My wallet stopped syncing",
    "invalid_key_error": "I see an invalid API key error",
    "key_revoked": "The exchange revoked my key",
    "security_changed": "I changed my exchange password or 2FA",
    "update_key": "I want to replace my API key",
    "create_key_help": "How do I create a new API key?",
    "key_still_failing": "My new key still doesn't work",
    "remove_exchange": "I'm thinking of removing the exchange",
    "upload_csv": "Can I upload a CSV instead?",
    "ask_sync_status": "How is the resync going?",
}


def faq_key(parse: Mapping[str, Any]) -> tuple[str | None, float]:
    """The ResponseSelector's pick (`faq_sync/<topic>`) and its confidence; (None, 0) when there is none."""
    response = ((parse.get("response_selector") or {}).get("default") or {}).get("response") or {}
    key = response.get("intent_response_key")
    return (str(key), float(response.get("confidence") or 0.0)) if key else (None, 0.0)


def suggestions(parse: Mapping[str, Any], hits: Sequence[Hit], limit: int = 3) -> list[Suggestion]:
    """Up to `limit` likely topics, best first: the search's hits and NLU's runners-up, interleaved so each
    source gets its best guess in."""
    chosen: list[Suggestion] = []
    seen: set[str] = set()
    for suggestion in _interleave(_from_search(hits), _from_nlu(parse)):
        if suggestion.title not in seen:
            seen.add(suggestion.title)
            chosen.append(suggestion)
        if len(chosen) == limit:
            break
    return chosen


def _from_search(hits: Sequence[Hit]) -> list[Suggestion]:
    faq = load_faq()
    found = []
    for hit in hits:
        topic = hit.passage.topic
        if topic is not None:
            entry = faq[topic]
            payload = f"/{entry.intents[0]}" if entry.intents else entry.title
            found.append(Suggestion(entry.title, payload))
        elif hit.passage.exchange is not None and hit.passage.title.startswith("How do I make"):
            found.append(Suggestion(FLOW_TITLES["create_key_help"], "/create_key_help"))
        else:
            found.append(Suggestion(FLOW_TITLES["upload_csv"], "/upload_csv"))
    return found


def _from_nlu(parse: Mapping[str, Any]) -> list[Suggestion]:
    faq = load_faq()
    found = []
    for ranked in parse.get("intent_ranking") or []:
        intent = str(ranked.get("name") or "")
        if is_retrieval_intent(intent):
            key, _ = faq_key(parse)
            topic = topic_for_intent(key) if key else None
            if topic is not None:
                found.append(Suggestion(faq[topic].title, faq[topic].title))
        elif intent in FLOW_TITLES:
            found.append(Suggestion(FLOW_TITLES[intent], f"/{intent}"))
        else:
            topic = topic_for_intent(intent)
            if topic is not None:
                found.append(Suggestion(faq[topic].title, f"/{intent}"))
    return found


def _interleave(*sources: Iterable[Suggestion]) -> Iterable[Suggestion]:
    lists = [list(source) for source in sources]
    for index in range(max((len(items) for items in lists), default=0)):
        for items in lists:
            if index < len(items):
                yield items[index]


# Below this the ResponseSelector's pick is a guess (its held-out misses had 0.15-0.49, its hits mostly more).
UNSURE_PICK = 0.3
# The contract's key-setting questions: specific, well-trained intents, each an FAQ topic of its own.
_CONTRACT_QUESTIONS = frozenset(
    {"ask_passphrase", "ask_permissions", "ask_ip_whitelist", "ask_key_activation", "no_transactions"}
)


def question_for(parse: Mapping[str, Any]) -> str | None:
    """What an FAQ-intent message asks: the selector's pick (`faq_exchange/<topic>`), unless that pick is
    unsure and NLU's runner-up is one of the contract's key-setting questions, which then answers instead.

    "which scope should my coinbase key have" is `faq_exchange` at 0.64 with the selector unsure (0.23,
    Coinbase's old keys) and `ask_permissions` at 0.30 behind it: the permissions answer is the one asked for.
    """
    key, confidence = faq_key(parse)
    if key is not None and confidence >= UNSURE_PICK:
        return key
    ranking = [str(r.get("name")) for r in parse.get("intent_ranking") or []]
    runner_up = next((name for name in ranking[1:3] if name in _CONTRACT_QUESTIONS), None)
    return runner_up or key
