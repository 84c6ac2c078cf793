"""Who is signed in to the web app: the host app's widget JWT, or a local run's demo sign-in.

The same token the widget's socket presents (docs/channels.md "Widget JWT"; `channels/identity.py` checks it
for the socket): HS256 with `KEYMEDIC_WIDGET_JWT_SECRET` (at least 32 bytes), audience
`KEYMEDIC_WIDGET_JWT_AUDIENCE`, `sub` the KeyMedic handle, `exp` required. It comes as
`Authorization: Bearer <JWT>`. Only HS256 is accepted, so a token cannot choose its own algorithm.

In a local run with the widget's demo sign-in on (loopback only, `bot.web.widget.demo`), a request without a
token is the `demo` user, as the demo page's widget is.
"""

from __future__ import annotations

import re
from typing import Final

import jwt
from aiohttp import web

from bot.config import Settings
from bot.web.widget.demo import DEMO_USER, demo_signin_enabled

__all__ = ["SignInRefused", "bearer_token", "signed_in_handle"]

# The same handle rule as the widget channel (channels/identity.py).
_HANDLE: Final = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")
_MIN_SECRET_BYTES: Final = 32
_LEEWAY_S: Final = 30


class SignInRefused(Exception):
    """A token was presented and does not verify: the caller is told `not_signed_in`, never why."""


def bearer_token(request: web.Request) -> str | None:
    """The `Authorization: Bearer` token of the request, or None when there is none."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[len("bearer ") :].strip() or None


def signed_in_handle(request: web.Request, settings: Settings, *, demo: bool = True) -> str | None:
    """The verified KeyMedic handle of the caller; None when no token was presented (and, with `demo`, the
    local run's demo sign-in is off).

    Raises `SignInRefused` when a token was presented but does not verify: a bad token is never taken as
    "nobody", which a caller could otherwise use to fall back to a weaker rule.
    """
    token = bearer_token(request)
    if token is None:
        return DEMO_USER if demo and demo_signin_enabled(settings) else None
    if len(settings.widget_jwt_secret.encode()) < _MIN_SECRET_BYTES:
        raise SignInRefused("no usable widget JWT secret")
    try:
        claims = jwt.decode(
            token,
            settings.widget_jwt_secret,
            algorithms=["HS256"],
            audience=settings.widget_jwt_audience,
            leeway=_LEEWAY_S,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.InvalidTokenError:
        raise SignInRefused("token does not verify") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _HANDLE.fullmatch(sub):
        raise SignInRefused("malformed subject")
    return sub
