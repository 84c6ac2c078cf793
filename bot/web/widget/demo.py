"""The demo sign-in of a local run: the web app stands in for a host app and vouches for the demo user.

A real host app mints the widget's JWT for its signed-in user (docs/channels.md "Widget JWT"). `keymedic run`
has no host app, so the web app mints one for `demo` — only when `KEYMEDIC_WIDGET_DEMO_SIGNIN` is on *and* the
web app's public address is loopback. A production configuration sets `KEYMEDIC_WEB_PUBLIC_URL` to its real
address, so even a leaked flag cannot turn this on where anyone but the machine's owner could reach it.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Final
from urllib.parse import urlsplit

import jwt

from bot.config import Settings

__all__ = ["DEMO_USER", "DEMO_TOKEN_TTL_S", "demo_signin_enabled", "mint_demo_token"]

DEMO_USER: Final = "demo"
# Short-lived, like a host app's widget tokens should be (docs/channels.md): the widget fetches a fresh one
# whenever its socket (re)connects.
DEMO_TOKEN_TTL_S: Final = 600
# The same floor as the channel's verifier (channels/identity.py MIN_SECRET_BYTES, RFC 7518 §3.2).
_MIN_SECRET_BYTES: Final = 32
_ALGORITHM: Final = "HS256"


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_signin_enabled(settings: Settings) -> bool:
    """Whether the web app may mint demo tokens: local mode, flag on, loopback address, a usable JWT key."""
    return (
        not settings.production
        and settings.widget_demo_signin
        and _loopback(settings.web_base_url)
        and len(settings.widget_jwt_secret.encode()) >= _MIN_SECRET_BYTES
    )


def mint_demo_token(settings: Settings, *, now: float | None = None) -> str:
    """A widget JWT for the demo user, as a host app would mint it; only call when enabled."""
    if not demo_signin_enabled(settings):
        raise PermissionError("the demo sign-in is off in this configuration")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": DEMO_USER,
        "aud": settings.widget_jwt_audience,
        "iat": issued,
        "exp": issued + DEMO_TOKEN_TTL_S,
    }
    return jwt.encode(claims, settings.widget_jwt_secret, algorithm=_ALGORITHM)
