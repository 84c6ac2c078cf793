"""The questions a user asks alongside a trigger, in one message: "my kraken key stopped working, do I need a
passphrase?" is a broken key *and* a passphrase question, and deserves both answers.

NLU gives a message one intent, so the trigger wins and the question is lost. This reads the message's other
clauses for a question about one of the key's settings, the topics the article answers (passphrase,
permissions, IP restriction, activation). A clause counts only when it is phrased as a question (a question
mark, or opening with a question word), so an exchange's error text such as "Invalid API-key, IP, or
permissions for action" is not mistaken for one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from bot.knowledge import is_retrieval_intent

__all__ = [
    "SideTopic",
    "TwoPart",
    "SETTLED_TWO_PART_CONFIDENCE",
    "TRIGGER_INTENTS",
    "side_questions",
    "reported_problem",
    "two_part_trigger",
]

# A two-part reading is this confident at least: above the FallbackClassifier's threshold in config.yml (a
# test keeps it so), so the fallback does not undo a reading the clauses and DIET's top intent agree on.
SETTLED_TWO_PART_CONFIDENCE: Final = 0.6

# The intents that start the key update (data/rules/key_update.yml).
TRIGGER_INTENTS: Final = (
    "sync_stopped",
    "invalid_key_error",
    "key_revoked",
    "security_changed",
    "update_key",
)


class SideTopic(str, Enum):
    """A key setting a user asks about; the value is the intent that asks it on its own (DESIGN §3)."""

    PASSPHRASE = "ask_passphrase"
    PERMISSIONS = "ask_permissions"
    IP_WHITELIST = "ask_ip_whitelist"
    ACTIVATION = "ask_key_activation"


_TOPICS: Final[dict[SideTopic, re.Pattern[str]]] = {
    SideTopic.PASSPHRASE: re.compile(r"\bpass[\s-]?phrases?\b"),
    SideTopic.PERMISSIONS: re.compile(
        r"\bpermissions?\b|\bread[\s-]?only\b|\bwithdraw(al)?s?\b|\btrad(e|ing) (access|rights)\b"
    ),
    SideTopic.IP_WHITELIST: re.compile(r"\bip\b|\bwhite[\s-]?list|\ballow[\s-]?list|\bip address"),
    SideTopic.ACTIVATION: re.compile(r"\bactivat(e|ed|es|ing|ion)\b|\bconfirm(ation)? (e-?mail|link)\b"),
}

_QUESTION_OPENERS: Final = frozenset(
    {
        "do", "does", "did", "is", "are", "was", "should", "shall", "what", "which", "how", "where", "why",
        "can", "could", "must", "will", "would", "need", "any", "whats", "what's", "wondering",
    }
)  # fmt: skip
# A clause ends at sentence punctuation, a comma, or a joining word that starts a new thought.
_CLAUSES: Final = re.compile(r"[.;!?,—–]| - |\b(?:and|but|also|plus|so|then)\b")
_FILLERS: Final = frozenset(
    {"also", "and", "but", "so", "plus", "then", "oh", "btw", "quick", "question", "q"}
)


def _clauses(text: str) -> list[tuple[str, bool]]:
    """The message's clauses, each with whether it ends with a question mark."""
    parts: list[tuple[str, bool]] = []
    start = 0
    for match in _CLAUSES.finditer(text):
        parts.append((text[start : match.start()], match.group() == "?"))
        start = match.end()
    parts.append((text[start:], False))
    return [(clause.strip(), asked) for clause, asked in parts if clause.strip()]


def _is_question(clause: str, asked: bool) -> bool:
    if asked:
        return True
    words = [w for w in re.findall(r"[a-z']+", clause) if w not in _FILLERS]
    return bool(words) and words[0] in _QUESTION_OPENERS


def side_questions(text: str, *, besides: str | None = None) -> list[SideTopic]:
    """The key-setting questions asked in `text`, in the order of the message, without `besides` (the intent
    NLU already gave the message, whose answer comes anyway)."""
    found: list[SideTopic] = []
    for clause, asked in _clauses(text.lower()):
        if not _is_question(clause, asked):
            continue
        for topic, pattern in _TOPICS.items():
            if pattern.search(clause) and topic not in found and topic.value != besides:
                found.append(topic)
    return found


# A statement of what broke: a problem word about the key, the sync or the account's security.
_PROBLEM: Final = re.compile(
    r"\b(stop(ped|s)?|quit|died|dead|broke|broken|invalid|expired?|reject\w*|revoked?|disabled|deleted|"
    r"killed|removed|fail\w*|error|changed|reset|replac\w*|rotated|"
    r"not (working|syncing|updating)|(doesn'?t|does not|won'?t|isn'?t|is not) (work|sync|updat)\w*)\b"
)
_SUBJECT: Final = re.compile(r"\b(keys?|api|sync\w*|wallet|connection|password|2fa|authenticator|access)\b")


def reported_problem(text: str) -> bool:
    """Whether a clause of `text` that is not a question reports a broken key or sync ("my kraken key stopped
    working"), as a trigger does."""
    return any(
        not _is_question(clause, asked) and _PROBLEM.search(clause) and _SUBJECT.search(clause)
        for clause, asked in _clauses(text.lower())
    )


@dataclass(frozen=True)
class TwoPart:
    """A two-part message's reading: the trigger, its confidence, and the question intents it absorbs."""

    trigger: str
    confidence: float
    questions: tuple[str, ...]


def two_part_trigger(text: str, ranking: list[tuple[str, float]]) -> TwoPart | None:
    """The trigger a two-part message reports, with a confidence for it, or None for any other message.

    NLU gives "my kraken key stopped working, do I need a passphrase?" one intent, mostly the question's
    (`ask_passphrase`), sometimes the trigger's with too little confidence left for either. A message is taken
    as two-part only when a clause of its own states a problem with the key or the sync, another asks about a
    key setting, and NLU's top intent is that trigger or that question, so a plain question stays a question.
    Its intent is the likeliest trigger of the `ranking` (intent, confidence; best first), with the
    confidence of both readings together: the message is both. The key update that the trigger starts
    answers the question too (actions/key_update.py).
    """
    if not ranking:
        return None
    asked = side_questions(text)
    top = ranking[0][0]
    if not asked or not reported_problem(text):
        return None
    # The question may also come back as one of the FAQ's retrieval intents (`faq_exchange`, ...), which
    # answer the same key-setting questions per exchange (bot/knowledge/faq.yml).
    if (
        top not in TRIGGER_INTENTS
        and top not in {topic.value for topic in asked}
        and not is_retrieval_intent(top)
    ):
        return None
    triggers = [(name, confidence) for name, confidence in ranking if name in TRIGGER_INTENTS]
    if not triggers:
        return None
    trigger, confidence = max(triggers, key=lambda pair: pair[1])
    questions = tuple(topic.value for topic in asked)
    # The question's own reading, or the FAQ's (its retrieval intents answer the same key settings).
    question = max((c for name, c in ranking if name in questions or is_retrieval_intent(name)), default=0.0)
    # The clauses above found a reported problem and a key-setting question, and DIET's own top reading is one
    # of the two: the reading is settled, however DIET spread its confidence over the two parts (issue 14:
    # "my kucoin connection stopped updating, what passphrase do you mean" had ask_passphrase 0.23 and
    # sync_stopped 0.09, together under the fallback threshold, and fell back).
    combined = max(min(1.0, confidence + question), SETTLED_TWO_PART_CONFIDENCE)
    return TwoPart(trigger=trigger, confidence=combined, questions=questions)
