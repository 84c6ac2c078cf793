"""Is this request from Slack? The v0 signature of Slack's "Verifying requests from Slack" (docs/slack.md).

Slack signs every request it sends (events, button clicks) with the app's signing secret:

    X-Slack-Request-Timestamp: <unix seconds>
    X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + raw body)>

The body is the raw bytes, before any JSON or form parsing. A request whose timestamp is more than five
minutes from our clock is refused whatever its signature, so a captured request cannot be replayed later.

Framework-free (no Rasa import), at the bottom of the layers: both Slack surfaces use it, the user-facing
channel in Rasa (`channels.slack`, through `channels.slack_signature`) and the support channel in the web app
(`bot.web.slack_support`). The unit tests run it against Slack's published example.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Final

__all__ = ["SignatureRefused", "SlackSignatureVerifier", "REPLAY_WINDOW_S", "sign"]

# Slack's documentation: "If the request timestamp is more than five minutes from local time, it could be a
# replay attack, so let's ignore it."
REPLAY_WINDOW_S: Final = 5 * 60
_VERSION: Final = "v0"


class SignatureRefused(Exception):
    """The request is not provably from Slack. `code` is logged and answered; nothing about the secret is."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` value Slack sends for this timestamp and body."""
    base = f"{_VERSION}:{timestamp}:".encode() + body
    return f"{_VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSignatureVerifier:
    """Checks `X-Slack-Signature` and `X-Slack-Request-Timestamp` against the signing secret."""

    def __init__(
        self, secret: str, *, clock: Callable[[], float] = time.time, window_s: int = REPLAY_WINDOW_S
    ) -> None:
        if not secret:
            raise ValueError("a Slack signing secret is required")
        self._secret = secret
        self._clock = clock
        self._window_s = window_s

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> None:
        """Returns when the request is Slack's and fresh; raises `SignatureRefused` otherwise:
        `missing_signature`, `bad_timestamp`, `stale_request` or `bad_signature`."""
        if not timestamp or not signature:
            raise SignatureRefused("missing_signature")
        # Digits only: int() would also take " 17", "+17" or "1_7", each a different signed string.
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureRefused("bad_timestamp")
        # Both ways: a timestamp from the future is as suspect as an old one.
        if abs(self._clock() - int(timestamp)) > self._window_s:
            raise SignatureRefused("stale_request")
        expected = sign(self._secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise SignatureRefused("bad_signature")
