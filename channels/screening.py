"""The redaction step every KeyMedic channel runs on an incoming message before Rasa sees it (DESIGN §5).

A pasted secret is replaced in the text (`bot.redaction`) and in any string of the client's metadata, so NLU,
the tracker store, Rasa's logs and the action server never see it. The channel then tells the user, straight
away and outside the conversation's events, that it was not stored and that the key must be revoked; the
message Rasa gets carries `metadata["redacted"]` (the kinds found, never a value) so an action can react.

It also keeps a user from speaking for KeyMedic itself. Rasa reads `/intent{json}` from any channel, and the
`EXTERNAL_*` intents are the ones only KeyMedic's own jobs send, through Rasa's (token-guarded)
trigger_intent API: typed by a user, `/EXTERNAL_key_failed{"exchange_name": "…"}` would make the bot post
words of the user's choosing as KeyMedic's outreach, where others in a Slack thread read them. Such a
message loses its leading slash, so NLU reads it as the plain text it is.

And it bounds what one message may cost (issue 19). A message longer than `MAX_MESSAGE_CHARS`, or metadata
larger than `MAX_METADATA_CHARS`, is refused (`refusal`) before redaction and NLU run: both cost time in
proportion to the text, in the one event loop that serves every conversation, so a 1 MB paste used to stall
every other user for seconds. The limit is a chat message's (Slack advises 4,000 characters; the widget's
input stops at 2,000), and the user is told the limit and what to do instead (docs/channels.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from bot.redaction import redact, redact_value

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_METADATA_CHARS",
    "NOTICE",
    "REDACTED_METADATA_KEY",
    "REFUSED_METADATA_KEY",
    "Screened",
    "TOO_LONG",
    "defang_external_intent",
    "refusal",
    "screen",
]

REDACTED_METADATA_KEY: Final = "redacted"
# Set by a channel (never by a client) on a message it refused, so its own wrapper answers instead of Rasa.
REFUSED_METADATA_KEY: Final = "keymedic_refused"

MAX_MESSAGE_CHARS: Final = 4_000
# Metadata is the client's own (the widget sends a few fields); anything near this is not a chat client.
MAX_METADATA_CHARS: Final = 16_000

TOO_LONG: Final = (
    f"That message is too long for me to read: I take messages of up to {MAX_MESSAGE_CHARS:,} characters. "
    "Please send a shorter one, just the part that matters (for example the error message the exchange "
    "shows). For a long file, such as a CSV export, use the upload in the app instead of the chat."
)

NOTICE: Final = (
    "That looked like an API secret, so I removed it from your message: it was not stored. Please revoke "
    "that key on the exchange now (anyone who saw it could use it), create a new one, and enter it only in "
    "the secure form I send you, never in the chat."
)


# Rasa strips the text, then takes everything after "/" up to "{" or "@" as the intent name.
_EXTERNAL_INTENT: Final = re.compile(r"^\s*/+\s*(?=EXTERNAL_)", re.IGNORECASE)


def defang_external_intent(text: str) -> str:
    """`text` without the slash that would make Rasa read it as one of KeyMedic's own `EXTERNAL_*` intents."""
    return _EXTERNAL_INTENT.sub("", text, count=1)


@dataclass(frozen=True)
class Screened:
    """A message after redaction: the text and metadata Rasa may see, and the kinds of secret taken out."""

    text: Any
    metadata: dict[str, Any] | None
    kinds: tuple[str, ...]


def _size(value: Any, budget: int) -> int:
    """The characters in `value`'s strings and keys, counted only up to `budget` (then it stops early, so a
    huge value costs no more than a small one)."""
    pending = [value]
    total = 0
    while pending and total <= budget:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(str(key)) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            total += len(item)
            pending.extend(item)
        else:
            total += 8
    return total


def refusal(text: Any, metadata: Any) -> str | None:
    """The answer to a message too large to read (`TOO_LONG`), or None when it may be screened. O(1) in the
    text's length, so it runs before anything that reads the text."""
    if isinstance(text, str) and len(text) > MAX_MESSAGE_CHARS:
        return TOO_LONG
    if metadata is not None and _size(metadata, MAX_METADATA_CHARS) > MAX_METADATA_CHARS:
        return TOO_LONG
    return None


def _metadata(raw: Any) -> dict[str, Any] | None:
    # The widget may send its metadata as a JSON string (Rasa's socket.io channel accepts both).
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict):
        return None
    # Only the channel says what was redacted; a client cannot make an action believe it pasted a key.
    return {str(k): v for k, v in raw.items() if k not in (REDACTED_METADATA_KEY, REFUSED_METADATA_KEY)}


def screen(text: Any, metadata: Any) -> Screened:
    """Redact `text` (when it is a string) and every string in `metadata`."""
    kinds: dict[str, None] = {}
    if isinstance(text, str):
        result = redact(defang_external_intent(text))
        text = result.text
        kinds.update(dict.fromkeys(result.kinds))
    cleaned = _metadata(metadata)
    if cleaned is not None:
        redacted, found = redact_value(cleaned)
        assert isinstance(redacted, dict)
        cleaned = redacted
        kinds.update(dict.fromkeys(found))
    # A form link pasted back into the chat is taken out (its token is a one-time credential), but it is no
    # exchange key: the user has nothing to revoke, so it is not reported as a secret.
    kinds.pop("form_token", None)
    # Text past what the redactor scans is cut off unread (`bot.redaction`), which is no sign of a secret.
    kinds.pop("unscanned", None)
    if kinds:
        cleaned = {**(cleaned or {}), REDACTED_METADATA_KEY: list(kinds)}
    return Screened(text, cleaned, tuple(kinds))
