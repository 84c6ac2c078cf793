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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from bot.redaction import redact, redact_value

__all__ = ["NOTICE", "REDACTED_METADATA_KEY", "Screened", "defang_external_intent", "screen"]

REDACTED_METADATA_KEY: Final = "redacted"

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
    return {str(k): v for k, v in raw.items() if k != REDACTED_METADATA_KEY}


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
    if kinds:
        cleaned = {**(cleaned or {}), REDACTED_METADATA_KEY: list(kinds)}
    return Screened(text, cleaned, tuple(kinds))
