"""action_record_csat: a rating from a button, or typed in answer to the rating question, is kept in the
conversation; a bad answer to the question asks again; a number typed to another question is no rating."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.csat import ActionRecordCsat
from bot.csat import QUESTION, RETRY, rating_buttons

_RATING_BUTTONS = rating_buttons()
_ASKED_RATING = {"event": "bot", "text": "How well did we help you?", "data": {"buttons": _RATING_BUTTONS}}
_ASKED_WALLET = {
    "event": "bot",
    "text": "You have 2 Kraken connections. Which one needs the new key?",
    "data": {"buttons": [{"title": "Main", "payload": '/inform{"wallet_id": "2"}'}]},
}


def _tracker(
    text: str,
    entities: list[dict[str, Any]] | None = None,
    *,
    last_bot: dict[str, Any] | None = _ASKED_RATING,
    active_loop: str | None = None,
) -> Tracker:
    message = {"text": text, "intent": {"name": "inform"}, "entities": entities or []}
    events = [last_bot, {"event": "user", "text": text}] if last_bot else []
    loop = {"name": active_loop} if active_loop else {}
    return Tracker("user-1", {}, message, events, False, None, loop, "action_listen")


async def test_a_button_rating_is_recorded_and_thanked() -> None:
    dispatcher = CollectingDispatcher()
    button = _tracker('/inform{"csat_rating": "4"}', [{"entity": "csat_rating", "value": "4"}])
    events = await ActionRecordCsat().run(dispatcher, button, {})
    assert events == [SlotSet("csat_rating", "4")]
    assert dispatcher.messages[0]["response"] == "utter_csat_thanks"


async def test_a_button_clicked_later_still_counts() -> None:
    button = _tracker('/inform{"csat_rating": "2"}', [{"entity": "csat_rating", "value": "2"}], last_bot=None)
    assert await ActionRecordCsat().run(CollectingDispatcher(), button, {}) == [SlotSet("csat_rating", "2")]


async def test_a_number_typed_after_the_rating_question_is_recorded() -> None:
    typed = _tracker("5", [{"entity": "csat_rating", "value": "5"}])
    assert await ActionRecordCsat().run(CollectingDispatcher(), typed, {}) == [SlotSet("csat_rating", "5")]


async def test_a_typed_number_with_words_is_recorded() -> None:
    events = await ActionRecordCsat().run(CollectingDispatcher(), _tracker("I'd give it a 5"), {})
    assert events == [SlotSet("csat_rating", "5")]


@pytest.mark.parametrize("text", ["7", "great thanks", "3 or 4"])
async def test_no_rating_asks_again_and_records_nothing(text: str) -> None:
    dispatcher = CollectingDispatcher()
    assert await ActionRecordCsat().run(dispatcher, _tracker(text), {}) == []
    assert dispatcher.messages[0]["text"] == RETRY and dispatcher.messages[0]["buttons"] == rating_buttons()


async def test_a_number_typed_to_the_wallet_question_is_no_rating_and_the_form_asks_again() -> None:
    dispatcher = CollectingDispatcher()
    typed = _tracker(
        "2", [{"entity": "csat_rating", "value": "2"}], last_bot=_ASKED_WALLET, active_loop="key_update_form"
    )
    assert await ActionRecordCsat().run(dispatcher, typed, {}) == []
    assert dispatcher.messages == []  # the form's own question comes next (data/rules/csat.yml)


async def test_a_number_typed_out_of_the_blue_is_not_understood() -> None:
    dispatcher = CollectingDispatcher()
    typed = _tracker("4", [{"entity": "csat_rating", "value": "4"}], last_bot=_ASKED_WALLET)
    assert await ActionRecordCsat().run(dispatcher, typed, {}) == []
    assert dispatcher.messages[0]["response"] == "utter_default"


async def test_a_finished_resync_ends_with_the_rating_question() -> None:
    from actions.key_update import ActionReportSync
    from tests.unit.actions.fakes import FakeDesk, tracker

    dispatcher = CollectingDispatcher()
    await ActionReportSync(FakeDesk()).run(
        dispatcher, tracker({"exchange": "kraken", "sync_run_id": "77"}), {}
    )
    assert "syncing again" in str(dispatcher.messages[0].get("text"))
    assert [(m.get("text"), m.get("buttons")) for m in dispatcher.messages[1:]] == [
        (QUESTION, rating_buttons())
    ]
