"""A secret pasted into the REST channel never reaches the tracker store, Rasa's debug log or the action
server, and the user is told it was not stored (DESIGN §5; issue 6 "Redaction")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.redaction import REDACTED
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for
from tests.integration.channels.conftest import ChannelStack

pytestmark = [pytest.mark.integration, pytest.mark.rasa_model]

DEMO = "demo"


def _texts(replies: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("text") or "") for r in replies]


def _fragments(value: str) -> list[bytes]:
    """What must not appear anywhere: the value, or each line of a PEM key (stored with escaped newlines)."""
    lines = [line.strip() for line in re.split(r"\n|\\n", value)]
    return [line.encode() for line in lines if len(line) >= 8 and "PRIVATE KEY" not in line]


def _all_pasted() -> dict[str, str]:
    return {
        f"{exchange}/{field}": value
        for exchange in SANDBOX_EXCHANGES
        for field, value in credentials_for(exchange, "valid").items()
    }


@pytest.fixture(scope="module")
def pasted(channel_stack: ChannelStack) -> dict[str, list[list[dict[str, Any]]]]:
    """Every exchange's key, secret and passphrase pasted into the demo user's chat, then the key update
    started (so the action server is called with the whole conversation)."""
    replies: dict[str, list[list[dict[str, Any]]]] = {}
    channel_stack.say(DEMO, "/restart")
    for exchange in SANDBOX_EXCHANGES:
        creds = credentials_for(exchange, "valid")
        replies[exchange] = [
            channel_stack.say(
                DEMO, f"my {exchange} key stopped working, here is the secret: {creds['api_secret']}"
            ),
            channel_stack.say(DEMO, " ".join(f"{name}={value}" for name, value in creds.items())),
        ]
    channel_stack.say(DEMO, "/restart")
    channel_stack.say(DEMO, "my kraken wallet says the api key is invalid")
    return replies


def test_the_user_is_told_first_that_the_secret_was_not_stored(
    pasted: dict[str, list[list[dict[str, Any]]]],
) -> None:
    for exchange, exchanges_replies in pasted.items():
        for replies in exchanges_replies:
            texts = _texts(replies)
            assert texts, exchange
            assert "was not stored" in texts[0] and "revoke" in texts[0], (exchange, texts)


def test_no_secret_is_in_the_tracker_stores_bytes(
    channel_stack: ChannelStack, pasted: dict[str, list[list[dict[str, Any]]]]
) -> None:
    stored = channel_stack.stored_bytes()
    assert REDACTED.encode() in stored  # the messages were stored, redacted
    for name, value in _all_pasted().items():
        for fragment in _fragments(value):
            assert fragment not in stored, name


def test_no_secret_is_in_rasas_debug_log(
    channel_stack: ChannelStack, pasted: dict[str, list[list[dict[str, Any]]]]
) -> None:
    log = channel_stack.rasa_log.read_bytes()
    assert b"DEBUG" in log and REDACTED.encode() in log  # debug logging did record the messages
    for name, value in _all_pasted().items():
        for fragment in _fragments(value):
            assert fragment not in log, name


def test_the_action_server_never_received_a_secret(
    channel_stack: ChannelStack, pasted: dict[str, list[list[dict[str, Any]]]]
) -> None:
    received = b"\n".join(channel_stack.proxy.bodies)
    assert REDACTED.encode() in received  # the conversation with the pasted messages reached it
    action_log = channel_stack.actions_log.read_bytes()
    for name, value in _all_pasted().items():
        for fragment in _fragments(value):
            assert fragment not in received, name
            assert fragment not in action_log, name


def test_the_action_server_sees_what_kind_was_redacted(
    channel_stack: ChannelStack, pasted: dict[str, list[list[dict[str, Any]]]]
) -> None:
    received = b"\n".join(channel_stack.proxy.bodies)
    assert b'"redacted": ["kraken_secret"]' in received or b'"redacted":["kraken_secret"]' in received


def test_an_ordinary_message_gets_no_warning_and_is_stored_as_written(channel_stack: ChannelStack) -> None:
    replies = channel_stack.say("rest-ordinary", "my kraken key stopped working, tx OQCLML-BW3P3-BUCMWZ")
    assert not any("was not stored" in text for text in _texts(replies))
    assert b"tx OQCLML-BW3P3-BUCMWZ" in channel_stack.stored_bytes()


def test_client_metadata_is_redacted_and_cannot_fake_a_redaction(channel_stack: ChannelStack) -> None:
    secret = credentials_for("binance", "valid")["api_secret"]
    replies = channel_stack.say("rest-metadata", "hello", metadata={"note": secret})
    assert "was not stored" in _texts(replies)[0]
    assert secret.encode() not in channel_stack.stored_bytes()

    replies = channel_stack.say("rest-metadata", "hello again", metadata={"redacted": ["kraken_secret"]})
    assert not any("was not stored" in text for text in _texts(replies))


def test_a_message_over_the_size_limit_is_answered_with_the_limit_and_never_stored(
    channel_stack: ChannelStack,
) -> None:
    from channels.screening import TOO_LONG

    sender = "rest-oversized"
    replies = channel_stack.say(sender, "word " * 200_000)  # 1 MB
    assert _texts(replies) == [TOO_LONG]
    assert b"word word word" not in channel_stack.stored_bytes()
