"""`channels.identity`: the widget JWT check on its own (no server)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from channels.identity import TokenRefused, WidgetTokenVerifier, session_id_for

SECRET = "k" * 40
AUDIENCE = "keymedic-widget"


def _token(**claims: object) -> str:
    now = int(time.time())
    body: dict[str, object] = {"sub": "demo", "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, algorithm="HS256")


def _code(verifier: WidgetTokenVerifier, token: object) -> str:
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(token)
    return refused.value.code


def test_a_valid_token_names_the_user_and_their_one_conversation() -> None:
    identity = WidgetTokenVerifier(SECRET, AUDIENCE).verify("Bearer " + _token())
    assert identity.user == "demo"
    assert identity.session_id == session_id_for("demo") != session_id_for("demo2")
    assert "demo" not in identity.session_id


# Tokens are made when each test runs, not when the module is collected: a long test session would
# otherwise see the "valid for five minutes" ones expire and fail for the wrong reason.
@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda: None, "missing_token"),
        (lambda: "", "missing_token"),
        (lambda: "not.a.jwt", "invalid_token"),
        (lambda: _token(exp=int(time.time()) - 120), "token_expired"),
        (lambda: _token(aud="someone-else"), "invalid_token"),
        (lambda: _token(aud=None), "invalid_token"),
        (lambda: _token(sub=None), "invalid_token"),
        (lambda: _token(sub="has spaces in it"), "invalid_token"),
        (
            lambda: jwt.encode(
                {"sub": "demo", "aud": AUDIENCE, "exp": int(time.time()) + 60}, None, algorithm="none"
            ),
            "invalid_token",
        ),
        (
            lambda: jwt.encode(
                {"sub": "demo", "aud": AUDIENCE, "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256"
            ),
            "invalid_token",
        ),
    ],
    ids=[
        "none",
        "empty",
        "not-a-jwt",
        "expired",
        "other-audience",
        "no-audience",
        "no-subject",
        "subject-with-spaces",
        "alg-none",
        "other-key",
    ],  # fmt: skip
)
def test_unusable_tokens_are_refused_with_a_code(make_token: Callable[[], object], code: str) -> None:
    assert _code(WidgetTokenVerifier(SECRET, AUDIENCE), make_token()) == code


def test_without_a_long_enough_key_every_token_is_refused() -> None:
    verifier = WidgetTokenVerifier("short", AUDIENCE)
    assert not verifier.configured
    assert _code(verifier, _token()) == "widget_not_configured"


def test_a_connection_outlives_its_token_only_by_the_leeway() -> None:
    now = [time.time()]
    verifier = WidgetTokenVerifier(SECRET, AUDIENCE, clock=lambda: now[0])
    identity = verifier.verify(_token())
    assert not verifier.expired(identity)
    now[0] += 300 + 31
    assert verifier.expired(identity)
