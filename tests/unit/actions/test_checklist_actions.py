"""The checklist asks only what is still open, in the article's order, and ends with the fix or support."""

from __future__ import annotations

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.checklist import ASK_ACTIONS, ActionChecklistResult, ValidateChecklistForm
from bot.store.services import DiagnosisNotPassed
from bot.types.diagnosis import Item
from tests.unit.actions.fakes import FakeDesk, tracker


async def required(slots: dict[str, object]) -> list[str]:
    return await ValidateChecklistForm().required_slots([], CollectingDispatcher(), tracker(slots), {})


async def test_only_the_items_the_live_test_left_open_are_asked() -> None:
    slots = {"exchange": "gemini", "unknown_items": ["has_activity", "no_ip_restriction"]}
    assert await required(slots) == ["checklist_no_ip_restriction", "checklist_has_activity"]


async def test_without_a_live_test_the_whole_checklist_is_asked_in_the_articles_order() -> None:
    assert await required({"exchange": "kucoin"}) == [
        "checklist_format",
        "checklist_passphrase_ok",
        "checklist_read_permission",
        "checklist_no_trade_or_withdraw",
        "checklist_activated",
        "checklist_no_ip_restriction",
        "checklist_has_activity",
    ]


async def test_no_passphrase_question_for_an_exchange_without_passphrases() -> None:
    assert "checklist_passphrase_ok" not in await required({"exchange": "kraken"})


async def test_questions_use_the_exchanges_own_words_with_yes_and_no_buttons() -> None:
    dispatcher = CollectingDispatcher()
    await ASK_ACTIONS[Item.HAS_ACTIVITY]().run(dispatcher, tracker({"exchange": "kraken"}), {})
    (message,) = dispatcher.messages
    assert "Kraken account" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]


async def test_a_no_gets_its_fix() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"exchange": "kraken", "checklist_format": True, "checklist_no_ip_restriction": False}
    events = await ActionChecklistResult().run(dispatcher, tracker(slots), {})
    assert "Remove the IP restriction" in dispatcher.messages[0]["text"]
    assert events[-1]["value"] == "fix_found"


async def test_all_clear_hands_over_to_support_before_any_removal() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"exchange": "kraken", "unknown_items": ["has_activity"], "checklist_has_activity": True}
    events = await ActionChecklistResult().run(dispatcher, tracker(slots), {})
    assert "support team" in dispatcher.messages[0]["text"]
    assert events[-1]["value"] == "all_clear"


# A Crypto.com key the live test accepted, with permissions and the IP allow-list left for the user.
CONFIRMED = {
    "exchange": "crypto_com",
    "wallet_id": "22",
    "credential_ref": "pc_cdc",
    "key_status": "unknown_items",
    "unknown_items": ["no_trade_or_withdraw", "no_ip_restriction"],
    "checklist_no_trade_or_withdraw": True,
    "checklist_no_ip_restriction": True,
}


async def test_every_open_item_confirmed_saves_the_tested_key_and_starts_its_resync() -> None:
    desk, dispatcher = FakeDesk(), CollectingDispatcher()
    events = await ActionChecklistResult(desk).run(dispatcher, tracker(CONFIRMED), {})
    assert desk.calls == [
        ("update_confirmed_key", (22, "pc_cdc", ["no_ip_restriction", "no_trade_or_withdraw"]))
    ]
    assert "now uses the new key (****abcd)" in dispatcher.messages[0]["text"]
    assert "support" not in dispatcher.messages[0]["text"]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots == {"checklist_outcome": "key_saved", "sync_run_id": "77", "credential_ref": None}
    assert [e["event"] for e in events if e["event"] != "slot"] == ["reminder"]


async def test_a_key_the_desk_refuses_goes_to_support_as_before() -> None:
    desk, dispatcher = FakeDesk(update=DiagnosisNotPassed("not passed")), CollectingDispatcher()
    events = await ActionChecklistResult(desk).run(dispatcher, tracker(CONFIRMED), {})
    assert "support team" in dispatcher.messages[0]["text"]
    assert events == [SlotSet("checklist_outcome", "all_clear")]


async def test_a_no_keeps_the_key_pending_and_asks_nothing_of_the_desk() -> None:
    desk, dispatcher = FakeDesk(), CollectingDispatcher()
    slots = {**CONFIRMED, "checklist_no_ip_restriction": False}
    events = await ActionChecklistResult(desk).run(dispatcher, tracker(slots), {})
    assert desk.calls == []
    assert events == [SlotSet("checklist_outcome", "fix_found")]


async def test_without_a_live_test_or_a_pending_key_support_takes_over() -> None:
    for missing in ({"unknown_items": []}, {"credential_ref": None}, {"key_status": "failed"}):
        desk, dispatcher = FakeDesk(), CollectingDispatcher()
        events = await ActionChecklistResult(desk).run(dispatcher, tracker({**CONFIRMED, **missing}), {})
        assert desk.calls == [], missing
        assert events == [SlotSet("checklist_outcome", "all_clear")], missing
