"""action_record_csat: a rating from a button or typed is kept in the conversation; else it asks again."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.csat import ActionRecordCsat


def _tracker(text: str, entities: list[dict[str, Any]] | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": "rate_help"}, "entities": entities or []}
    return Tracker("user-1", {}, message, [], False, None, {}, "action_listen")


async def test_a_button_rating_is_recorded_and_thanked() -> None:
    dispatcher = CollectingDispatcher()
    button = _tracker('/rate_help{"csat_rating": "4"}', [{"entity": "csat_rating", "value": "4"}])
    events = await ActionRecordCsat().run(dispatcher, button, {})
    assert events == [SlotSet("csat_rating", "4")]
    assert dispatcher.messages[0]["response"] == "utter_csat_thanks"


async def test_a_typed_number_is_recorded() -> None:
    events = await ActionRecordCsat().run(CollectingDispatcher(), _tracker("I'd give it a 5"), {})
    assert events == [SlotSet("csat_rating", "5")]


@pytest.mark.parametrize("text", ["7", "great thanks", "3 or 4"])
async def test_no_rating_asks_again_and_records_nothing(text: str) -> None:
    dispatcher = CollectingDispatcher()
    assert await ActionRecordCsat().run(dispatcher, _tracker(text), {}) == []
    assert dispatcher.messages[0]["response"] == "utter_csat_retry"


async def test_a_finished_resync_ends_with_the_rating_question() -> None:
    from actions.key_update import ActionReportSync
    from tests.unit.actions.fakes import FakeDesk, tracker

    dispatcher = CollectingDispatcher()
    await ActionReportSync(FakeDesk()).run(
        dispatcher, tracker({"exchange": "kraken", "sync_run_id": "77"}), {}
    )
    assert "syncing again" in str(dispatcher.messages[0].get("text"))
    assert [m.get("response") for m in dispatcher.messages[1:]] == ["utter_ask_csat"]
