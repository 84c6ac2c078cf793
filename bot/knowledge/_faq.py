"""KeyMedic's FAQ: the answers of `faq.yml`, told for the user's exchange where the exchange changes them.

A topic is what the ResponseSelector picks (`faq/<topic>`) or what a plain contract intent asks
(`ask_passphrase` -> `passphrase`). `answer(topic, exchange)` gives the text: the topic's own answer for that
exchange when `faq.yml` has one, else one built from the exchange's guide (`exchanges.yml`) by the topic's
renderer, else the general answer. Loading fails with `KnowledgeError` naming the topic and field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from bot.exchange_ids import EXCHANGE_IDS, ExchangeId
from bot.knowledge._guides import ExchangeGuide, KnowledgeError, _StrictLoader, guide_for, load_guides

__all__ = [
    "FAQ_PATH",
    "FaqTopic",
    "load_faq",
    "topic_for_intent",
    "answer",
    "faq_topics",
    "depends_on_exchange",
    "is_retrieval_intent",
]

FAQ_PATH: Final = Path(__file__).with_name("faq.yml")


@dataclass(frozen=True)
class FaqTopic:
    """One question people ask, and what KeyMedic answers."""

    topic: str
    title: str
    intents: tuple[str, ...]
    answer: str
    render: str | None
    exchanges: Mapping[ExchangeId, str]


def load_faq(path: Path | str | None = None) -> Mapping[str, FaqTopic]:
    """Every topic of the FAQ file by name, in file order; read once per path, then cached (read-only)."""
    return _load(Path(path).resolve() if path is not None else FAQ_PATH)


def faq_topics() -> tuple[str, ...]:
    """The topic names of the default FAQ file."""
    return tuple(load_faq())


def is_retrieval_intent(intent: str) -> bool:
    """Whether an intent is one of the FAQ's retrieval intents (`faq`, `faq_sync`, ...): its topic is the
    ResponseSelector's pick, not the intent."""
    return intent == "faq" or intent.startswith("faq_")


def topic_for_intent(intent: str) -> str | None:
    """The topic a plain intent (`ask_passphrase`) or a retrieval key (`faq_sync/tab_open`) asks about."""
    faq = load_faq()
    base, _, name = intent.partition("/")
    if name:
        return name if is_retrieval_intent(base) and name in faq else None
    for topic in faq.values():
        if intent in topic.intents:
            return topic.topic
    return None


def answer(topic: str, exchange: str | None = None) -> str:
    """The answer to `topic`, for `exchange` when one is known and it changes the answer.

    `KeyError` for an unknown topic; an unknown exchange id gets the general answer."""
    entry = load_faq()[topic]
    if exchange is None or exchange not in EXCHANGE_IDS:
        return entry.answer
    exchange_id: ExchangeId = exchange  # narrowed by the check against EXCHANGE_IDS above
    if exchange_id in entry.exchanges:
        return entry.exchanges[exchange_id]
    if entry.render is not None:
        return _RENDERERS[entry.render](guide_for(exchange_id), entry)
    return entry.answer


def depends_on_exchange(topic: str) -> bool:
    """Whether the answer to `topic` can change with the exchange (then it is worth finding the user's)."""
    entry = load_faq()[topic]
    return entry.render is not None or bool(entry.exchanges)


# --- renderers: the answer built from one exchange's guide (exchanges.yml) ---------------------------------


def _passphrase(guide: ExchangeGuide, entry: FaqTopic) -> str:
    if guide.passphrase.created:
        # The guide's note says what the passphrase is on this exchange: the one set when the key was made.
        return f"{guide.name} keys come with a passphrase. {guide.passphrase.note}"
    if guide.passphrase.note is not None:
        # Coinbase: no passphrase, but the note says what to save instead.
        return guide.passphrase.note
    return (
        f"{guide.name} keys don't come with a passphrase: you only need the {guide.labels.key} and the "
        f"{guide.labels.secret}, so leave the passphrase field empty."
    )


def _permissions(guide: ExchangeGuide, entry: FaqTopic) -> str:
    permissions = guide.permissions
    if permissions.turn_on:
        turn_on = f"Give your {guide.name} key read access only: turn on {_join(permissions.turn_on)}."
    else:
        turn_on = f"Give your {guide.name} key read access only."
    if permissions.leave_off:
        leave_off = f"Leave these off: {_join(permissions.leave_off)}."
    else:
        leave_off = "Leave withdrawal and trading permissions off."
    return _sentences(
        turn_on,
        leave_off,
        "Syncing only reads your transaction history and never moves funds.",
        permissions.note,
    )


def _ip_restriction(guide: ExchangeGuide, entry: FaqTopic) -> str:
    return _sentences(
        f"Leave IP restrictions off on {guide.name}: don't add any IP addresses to the key's "
        f"{guide.ip_restriction.setting}. Syncing doesn't come from a fixed IP address, so a restriction "
        "would block it.",
        guide.ip_restriction.note,
    )


def _activation(guide: ExchangeGuide, entry: FaqTopic) -> str:
    if guide.activation is not None:
        return _sentences(
            guide.activation, "Until it's active the key exists but won't work, so check your inbox."
        )
    return _sentences(
        f"If {guide.name} asks you to confirm the new key by email or 2FA, do it: most exchanges only switch "
        "a key on after that. Until then the key exists but won't work."
    )


def _activity(guide: ExchangeGuide, entry: FaqTopic) -> str:
    return _sentences(
        f"If your {guide.name} account has no deposits or trades yet, there's nothing to sync. Check that it "
        "has at least one transaction.",
        guide.activity,
    )


def _key_format(guide: ExchangeGuide, entry: FaqTopic) -> str:
    if not guide.key_format:
        return entry.answer
    return _sentences(entry.answer, f"On {guide.name}:", *guide.key_format)


def _live_check(guide: ExchangeGuide, entry: FaqTopic) -> str:
    if guide.live_check:
        return (
            f"I can test {guide.name} keys live: I check the key on {guide.name} and tell you exactly which "
            "item fails, if one does, before anything is saved."
        )
    live = tuple(g.name for g in load_guides().values() if g.live_check)
    return (
        f"I can't test {guide.name} keys live yet, but I can still tell you how to make the key and go "
        f"through the checklist with you. The exchanges I can test live are {_join(live)}."
    )


_RENDERERS: Final[dict[str, Callable[[ExchangeGuide, FaqTopic], str]]] = {
    "passphrase": _passphrase,
    "permissions": _permissions,
    "ip_restriction": _ip_restriction,
    "activation": _activation,
    "activity": _activity,
    "key_format": _key_format,
    "live_check": _live_check,
}


def _sentences(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


def _join(words: tuple[str, ...]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


# --- loading ------------------------------------------------------------------------------------------------

_FIELDS: Final = frozenset({"topic", "title", "intents", "answer", "render", "exchanges"})
_REQUIRED: Final = frozenset({"topic", "title", "answer"})


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Mapping[str, FaqTopic]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except OSError as exc:
        raise KnowledgeError(f"{path}: can't be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, list):
        raise KnowledgeError(f"{path.name}: expected a list of topics")
    load_guides()  # the renderers read the guides: a broken exchanges.yml shows up here, not mid-conversation
    topics: dict[str, FaqTopic] = {}
    intents: set[str] = set()
    for index, raw in enumerate(data):
        entry = _topic(raw, f"{path.name}: topic {index + 1}")
        where = f"{path.name}: topic {entry.topic!r}"
        if entry.topic in topics:
            raise KnowledgeError(f"{where}: appears more than once")
        if intents & set(entry.intents):
            raise KnowledgeError(f"{where}: an intent is already answered by another topic")
        intents |= set(entry.intents)
        topics[entry.topic] = entry
    return MappingProxyType(topics)


def _topic(raw: object, where: str) -> FaqTopic:
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: must be a mapping")
    if isinstance(raw.get("topic"), str):
        where = where.rsplit(": ", 1)[0] + f": topic {raw['topic']!r}"
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    missing = sorted(_REQUIRED - set(raw))
    if unknown or missing:
        raise KnowledgeError(f"{where}: unknown field(s) {unknown}, missing field(s) {missing}")
    topic = _text(raw["topic"], where, "topic")
    if not topic.isidentifier() or topic != topic.lower():
        raise KnowledgeError(f"{where}: topic must be a lower-case identifier (it becomes faq/{topic})")
    render = raw.get("render")
    if render is not None and render not in _RENDERERS:
        raise KnowledgeError(f"{where}: render {render!r} is not one of {sorted(_RENDERERS)}")
    exchanges: dict[ExchangeId, str] = {}
    for exchange, text in (raw.get("exchanges") or {}).items():
        if exchange not in EXCHANGE_IDS:
            raise KnowledgeError(
                f"{where}: exchanges.{exchange} is not an exchange id of bot/exchange_ids.py"
            )
        exchanges[exchange] = _text(text, where, f"exchanges.{exchange}")
    intents: Any = raw.get("intents") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        raise KnowledgeError(f"{where}: intents must be a list of intent names")
    return FaqTopic(
        topic=topic,
        title=_text(raw["title"], where, "title"),
        intents=tuple(intents),
        answer=_text(raw["answer"], where, "answer"),
        render=render,
        exchanges=MappingProxyType(exchanges),
    )


def _text(value: object, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeError(f"{where}: {field} must be non-empty text")
    return " ".join(value.split())


def one_faq_reading(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """NLU's intent ranking (name, confidence; best first) with the FAQ's retrieval intents read as one.

    The FAQ is split into four retrieval intents (`faq`, `faq_sync`, ...) only so that DIET keeps them apart
    from the flow intents; the same action answers the ResponseSelector's pick under any of them. Left split,
    a question DIET spreads over two of them ("is my old key removed as soon as I update": faq 0.51, faq_sync
    0.12) falls under the fallback threshold, or the two siblings look ambiguous to each other. When the best
    intent is an FAQ one, it carries the FAQ's whole confidence and its siblings leave the ranking.
    """
    if not ranking or not is_retrieval_intent(ranking[0][0]):
        return ranking
    total = min(1.0, sum(confidence for name, confidence in ranking if is_retrieval_intent(name)))
    return [(ranking[0][0], total), *((n, c) for n, c in ranking[1:] if not is_retrieval_intent(n))]


REMOVAL_INTENT = "remove_exchange"
# FallbackClassifier's ambiguity_threshold (config.yml): closer than this, two intents are a close call.
_CLOSE_CALL = 0.1


def removal_wins_a_close_call(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """`ranking` with removal first when it and an FAQ intent are a close call for the lead.

    "Wouldn't it be easier to remove kraken and add it again?" reads about as much as the FAQ's "why support
    before removal" as a removal request; left as it is, the fallback takes it and, inside the key form, the
    form simply asks again. The removal answer (the edits at stake, support first) is the safe one for any
    message that may be asking to remove an exchange, so it takes the lead, and the FAQ reading leaves the
    ranking rather than making the two look ambiguous.
    """
    if len(ranking) < 2:
        return ranking
    (first, c1), (second, c2) = ranking[0], ranking[1]
    pair = {first, second}
    if REMOVAL_INTENT not in pair or abs(c1 - c2) >= _CLOSE_CALL:
        return ranking
    other = second if first == REMOVAL_INTENT else first
    if not is_retrieval_intent(other):
        return ranking
    return [(REMOVAL_INTENT, max(c1, c2)), *ranking[2:]]
