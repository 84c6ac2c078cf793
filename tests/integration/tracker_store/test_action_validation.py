"""The cached validation of the action server's answers accepts and refuses exactly what Rasa's own does."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from rasa_plugins import action_validation, startup

[PATCH] = action_validation.PATCHES

GOOD: dict[str, Any] = {
    "events": [
        {"event": "slot", "name": "exchange", "value": "kraken", "timestamp": None},
        {"event": "active_loop", "name": "key_update_form"},
    ],
    "responses": [{"text": "hello", "buttons": []}],
}
BAD_EVENT: dict[str, Any] = {"events": [{"event": "slot", "value": "kraken"}], "responses": []}  # no name
BAD_SHAPE: dict[str, Any] = {"events": {"event": "slot"}, "responses": []}

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def installed() -> None:
    startup.install()


def _rasa_original(result: dict[str, Any]) -> str | None:
    try:
        PATCH.original()(RemoteAction("x", None), result)
    except ValidationError as error:
        return error.message
    return None


def _cached(result: dict[str, Any]) -> str | None:
    try:
        RemoteAction("x", None)._validate_action_result(result)
    except ValidationError as error:
        return error.message
    return None


def test_install_replaces_rasas_method_once() -> None:
    startup.install()
    assert PATCH.applied()
    assert RemoteAction._validate_action_result is action_validation.validate_action_result


@pytest.mark.parametrize("result", [GOOD, BAD_EVENT, BAD_SHAPE], ids=["valid", "no-name", "not-list"])
def test_same_verdict_and_message_as_rasa(result: dict[str, Any]) -> None:
    assert _cached(result) == _rasa_original(result)


def test_an_invalid_answer_is_refused_with_rasas_hint() -> None:
    message = _cached(BAD_SHAPE)
    assert message is not None and "Failed to validate Action server response" in message
