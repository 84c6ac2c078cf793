"""Slack's v0 request signature (`channels.slack_signature`), against Slack's own published example."""

from __future__ import annotations

import pytest

from channels.slack_signature import REPLAY_WINDOW_S, SignatureRefused, SlackSignatureVerifier, sign

# "Verifying requests from Slack" (api.slack.com/authentication/verifying-requests-from-slack): the worked
# example's signing secret, timestamp, raw slash-command body and the signature Slack says it produces.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def verifier_at(now: float) -> SlackSignatureVerifier:
    return SlackSignatureVerifier(SLACK_SECRET, clock=lambda: now)


def test_slacks_published_example_signs_and_verifies() -> None:
    assert sign(SLACK_SECRET, SLACK_TIMESTAMP, SLACK_BODY) == SLACK_SIGNATURE
    verifier_at(int(SLACK_TIMESTAMP) + 30).verify(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "code"),
    [
        (None, SLACK_SIGNATURE, SLACK_BODY, "missing_signature"),
        (SLACK_TIMESTAMP, None, SLACK_BODY, "missing_signature"),
        (SLACK_TIMESTAMP, "", SLACK_BODY, "missing_signature"),
        (SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY + b"&x=1", "bad_signature"),  # body changed
        (SLACK_TIMESTAMP, SLACK_SIGNATURE.replace("a2", "a3", 1), SLACK_BODY, "bad_signature"),
        (SLACK_TIMESTAMP, SLACK_SIGNATURE.replace("v0=", "v1="), SLACK_BODY, "bad_signature"),
        (" 1531420618", SLACK_SIGNATURE, SLACK_BODY, "bad_timestamp"),
        ("1531420618.5", SLACK_SIGNATURE, SLACK_BODY, "bad_timestamp"),
        ("１５３１４２０６１８", SLACK_SIGNATURE, SLACK_BODY, "bad_timestamp"),  # full-width digits
    ],
)
def test_unsigned_or_wrongly_signed_requests_are_refused(
    timestamp: str | None, signature: str | None, body: bytes, code: str
) -> None:
    with pytest.raises(SignatureRefused) as refused:
        verifier_at(int(SLACK_TIMESTAMP)).verify(timestamp, signature, body)
    assert refused.value.code == code


def test_another_apps_secret_does_not_verify() -> None:
    other = SlackSignatureVerifier("another-apps-signing-secret", clock=lambda: int(SLACK_TIMESTAMP))
    with pytest.raises(SignatureRefused, match="bad_signature"):
        other.verify(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY)


@pytest.mark.parametrize("offset", [REPLAY_WINDOW_S + 1, -(REPLAY_WINDOW_S + 1), 86400])
def test_a_correctly_signed_request_outside_five_minutes_is_a_replay(offset: int) -> None:
    # The published example is signed correctly; only our clock moves.
    with pytest.raises(SignatureRefused, match="stale_request"):
        verifier_at(int(SLACK_TIMESTAMP) + offset).verify(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY)


@pytest.mark.parametrize("offset", [0, REPLAY_WINDOW_S, -REPLAY_WINDOW_S])
def test_the_five_minute_window_includes_its_edges(offset: int) -> None:
    verifier = verifier_at(int(SLACK_TIMESTAMP) + offset)
    assert verifier.verify(SLACK_TIMESTAMP, SLACK_SIGNATURE, SLACK_BODY) is None  # a refusal raises


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        SlackSignatureVerifier("")


def test_a_refusal_names_no_secret_or_signature() -> None:
    with pytest.raises(SignatureRefused) as refused:
        verifier_at(int(SLACK_TIMESTAMP)).verify(SLACK_TIMESTAMP, "v0=00", SLACK_BODY)
    assert SLACK_SECRET not in str(refused.value) and "v0=" not in str(refused.value)
