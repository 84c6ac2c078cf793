"""The ticket's transcript: the conversation's user and bot turns, every text redacted before it is kept.

The input is the conversation's events as plain dicts, in the shape of a Rasa tracker's `events` list
(`{"event": "user" | "bot", "text": …, "timestamp": …, "metadata": …}`); other events are ignored. Turns are
keyed by (role, timestamp, redacted text), so the same events recorded twice — at the hand-off and again when
an agent opens the ticket — are kept once.

Redaction is `bot.redaction.redact` when that module is installed; until then (or if it fails to import) a
conservative stand-in masks every long token-like run of characters, so a pasted secret never reaches a
ticket either way.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

__all__ = [
    "Redaction",
    "Redactor",
    "fallback_redact",
    "load_redactor",
    "transcript_turns",
    "merge_turns",
    "AGENT_METADATA_KEY",
    "MAX_TURNS",
    "MAX_TEXT_CHARS",
]

log = logging.getLogger(__name__)

# A bot event appended by the agent API carries this metadata key (the agent's name), so the transcript can
# tell the agent's replies from the bot's.
AGENT_METADATA_KEY: Final = "keymedic_agent"
MAX_TURNS: Final = 500  # the newest turns are kept; a ticket is a hand-off, not an archive
MAX_TEXT_CHARS: Final = 4000


class Redaction(NamedTuple):
    """A text with its secrets replaced, and the kinds of secret that were found (empty when none)."""

    text: str
    kinds: tuple[str, ...]


class Redactor(Protocol):
    """What the transcript needs from `bot.redaction`: `redact(text)` → the text without secrets."""

    def __call__(self, text: str, /) -> Redaction: ...


# Long runs of key-alphabet characters (base64, hex, url-safe base64) with at least one digit and one letter:
# API keys and secrets look like that, prose does not. Used only until `bot.redaction` is there.
_KEY_CHARS: Final = "A-Za-z0-9+/=_-"
_TOKEN_LIKE: Final = re.compile(
    rf"(?<![{_KEY_CHARS}])(?=[{_KEY_CHARS}]*\d)(?=[{_KEY_CHARS}]*[A-Za-z])[{_KEY_CHARS}]{{20,}}(?![{_KEY_CHARS}])"
)


def fallback_redact(text: str) -> Redaction:
    """Mask every long token-like word (`[redacted]`): over-eager, as it stands in for `bot.redaction`."""
    redacted, count = _TOKEN_LIKE.subn("[redacted]", text)
    return Redaction(redacted, ("possible_secret",) if count else ())


def _adapt(redact: Any) -> Redactor:
    """Wrap `bot.redaction.redact`, whose result is a `(text, kinds)` pair or an object with `.text` and
    `.kinds`, into a `Redactor`."""

    def adapted(text: str, /) -> Redaction:
        result = redact(text)
        if isinstance(result, str):
            return Redaction(result, ())
        if isinstance(result, tuple) and len(result) == 2:
            redacted, kinds = result
        else:
            redacted, kinds = getattr(result, "text"), getattr(result, "kinds", ())  # noqa: B009
        return Redaction(str(redacted), tuple(str(kind) for kind in kinds or ()))

    return adapted


def load_redactor() -> Redactor:
    """`bot.redaction.redact` when it exists, else `fallback_redact`."""
    try:
        module = importlib.import_module("bot.redaction")
    except ImportError:
        log.warning("bot.redaction is not available; transcripts use the conservative fallback redaction")
        return fallback_redact
    redact = getattr(module, "redact", None)
    if not callable(redact):
        log.warning("bot.redaction has no redact(); transcripts use the conservative fallback redaction")
        return fallback_redact
    return _adapt(redact)


def _timestamp(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def transcript_turns(events: Iterable[Mapping[str, Any]], redact: Redactor) -> list[dict[str, Any]]:
    """The user, bot and agent turns of `events`, in order, each text redacted (and cut to a sane length).

    A turn is `{"role": "user" | "bot" | "agent", "text", "timestamp", "redacted": [kinds]}`; `agent` also
    names the agent.
    """
    turns: list[dict[str, Any]] = []
    for event in events:
        kind, text = event.get("event"), event.get("text")
        if kind not in ("user", "bot") or not isinstance(text, str) or not text.strip():
            continue
        # Redact before cutting: a cut could split a secret into pieces that no longer look like one.
        redaction = redact(text)
        turn: dict[str, Any] = {
            "role": kind,
            "text": redaction.text[:MAX_TEXT_CHARS],
            "timestamp": _timestamp(event.get("timestamp")),
            "redacted": list(redaction.kinds),
        }
        metadata = event.get("metadata")
        if kind == "bot" and isinstance(metadata, Mapping) and metadata.get(AGENT_METADATA_KEY):
            turn["role"] = "agent"
            turn["agent"] = str(metadata[AGENT_METADATA_KEY])[:100]
        turns.append(turn)
    return turns


def _key(turn: Mapping[str, Any]) -> tuple[str, float | None, str]:
    return (str(turn.get("role")), turn.get("timestamp"), str(turn.get("text")))


def merge_turns(
    existing: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`existing` plus the turns of `new` it does not hold yet, by timestamp (stable), newest `MAX_TURNS`."""
    seen = {_key(turn) for turn in existing}
    merged = [dict(turn) for turn in existing]
    for turn in new:
        if _key(turn) not in seen:
            seen.add(_key(turn))
            merged.append(dict(turn))
    merged.sort(key=lambda turn: turn["timestamp"] if turn.get("timestamp") is not None else float("inf"))
    return merged[-MAX_TURNS:]
