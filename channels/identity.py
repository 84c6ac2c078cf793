"""Who is on the widget's socket: the host app's JWT, checked (DESIGN §6; docs/channels.md "Widget JWT").

Framework-free (no Rasa import), so the web app's `identify` seam (`bot.web.app.Identify`) can use the same
check once it moves under `bot/`.

The host app signs, with HS256 and the shared key `KEYMEDIC_WIDGET_JWT_SECRET` (at least 32 bytes):

    {"sub": "<KeyMedic user handle>", "aud": "keymedic-widget", "exp": <unix time>, "iat": <unix time>}

`sub`, `aud` and `exp` are required; `nbf` and `iat` are honoured when present. Only HS256 is accepted, so a
token cannot pick its own algorithm (`none`, or RS256 with the shared key as a "public key").

The conversation follows from the user, never from the client: `session_id_for(sub)` is the one widget
conversation of that user, the same on every page load and every Rasa replica.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import jwt

__all__ = [
    "ALGORITHM",
    "MIN_SECRET_BYTES",
    "TokenRefused",
    "WidgetIdentity",
    "WidgetTokenVerifier",
    "session_id_for",
]

ALGORITHM: Final = "HS256"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_SECRET_BYTES: Final = 32
# Clocks of the host app and of Rasa drift a little; 30 s is generous for NTP-synced servers.
_LEEWAY_S: Final = 30
# A user handle: printable, no spaces, short enough for a log line and the tracker's sender id column.
_HANDLE: Final = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")
_SESSION_PREFIX: Final = "w-"


class TokenRefused(Exception):
    """The connection's token cannot be used. `code` is what the client is told; nothing else is."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class WidgetIdentity:
    """A verified widget user: their KeyMedic handle, their conversation, and when the token lapses."""

    user: str
    session_id: str
    expires_at: float


def session_id_for(user: str) -> str:
    """The widget conversation of a user: stable, and not the handle itself (which may be an e-mail) so the
    tracker store and Rasa's logs name a pseudonym; `bot.store` links it back to the user."""
    digest = hashlib.sha256(b"keymedic-widget-session\x00" + user.encode()).hexdigest()
    return _SESSION_PREFIX + digest[:32]


class WidgetTokenVerifier:
    """Checks a widget JWT and says who it names."""

    def __init__(
        self, secret: str, audience: str, *, clock: Callable[[], float] = time.time, leeway_s: int = _LEEWAY_S
    ) -> None:
        self._secret = secret
        self.audience = audience
        self._clock = clock
        self._leeway_s = leeway_s

    @property
    def configured(self) -> bool:
        """Whether a usable key is set; without one every token is refused."""
        return len(self._secret.encode()) >= MIN_SECRET_BYTES

    def verify(self, token: object) -> WidgetIdentity:
        """The identity the token vouches for; `TokenRefused` when it is missing, forged, expired or odd."""
        if not self.configured:
            raise TokenRefused("widget_not_configured")
        if not isinstance(token, str) or not token.strip():
            raise TokenRefused("missing_token")
        raw = token.strip()
        if raw.lower().startswith("bearer "):
            raw = raw[len("bearer ") :].strip()
        try:
            claims = jwt.decode(
                raw,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token_expired") from None
        except jwt.InvalidTokenError:
            # Forged, wrong audience, malformed: the client learns no more than "invalid".
            raise TokenRefused("invalid_token") from None
        user = claims.get("sub")
        if not isinstance(user, str) or not _HANDLE.fullmatch(user):
            raise TokenRefused("invalid_token")
        return WidgetIdentity(user=user, session_id=session_id_for(user), expires_at=float(claims["exp"]))

    def expired(self, identity: WidgetIdentity) -> bool:
        """Whether the token behind a connection has lapsed since it was checked."""
        return self._clock() > identity.expires_at + self._leeway_s
