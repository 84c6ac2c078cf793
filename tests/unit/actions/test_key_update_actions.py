"""The key update's actions translate `SupportDesk` answers into messages and slots, nothing more."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoffToSupport
from actions.key_update import (
    ActionAskCredentialRef,
    ActionCheckApiKey,
    ActionUpdateCredentials,
    ValidateKeyUpdateForm,
)
from actions.removal import ActionRemovalImpact
from bot.assistant import WalletView
from bot.diagnosis.errors import DiagnosisRateLimited
from bot.store.services import DiagnosisNotPassed, PendingCredentialInvalid
from bot.types.diagnosis import Status
from tests.unit.actions.fakes import FakeDesk, FakeHandoff, diagnosis, tracker, unavailable

KEY_SLOTS = {"exchange": "kraken", "wallet_id": "1", "credential_ref": "pc_ref"}


def texts(dispatcher: CollectingDispatcher) -> str:
    return "\n".join(str(m.get("text") or "") for m in dispatcher.messages)


def slot(events: list[dict[str, Any]], name: str) -> Any:
    values = [e["value"] for e in events if e.get("event") == "slot" and e.get("name") == name]
    assert values, f"slot {name} was not set"
    return values[-1]


async def test_a_failing_key_names_each_failing_item_with_its_fix_in_one_message() -> None:
    desk = FakeDesk(check=diagnosis(no_trade_or_withdraw=Status.FAIL, no_ip_restriction=Status.FAIL))
    dispatcher = CollectingDispatcher()

    events = await ActionCheckApiKey(desk).run(dispatcher, tracker(KEY_SLOTS), {})

    assert len(dispatcher.messages) == 1
    assert "fix for no_trade_or_withdraw" in texts(dispatcher)
    assert "fix for no_ip_restriction" in texts(dispatcher)
    assert slot(events, "key_status") == "failed"
    assert slot(events, "failing_items") == ["no_trade_or_withdraw", "no_ip_restriction"]
    assert slot(events, "credential_ref") is None  # the next try needs a new submission


async def test_an_unavailable_exchange_is_not_the_users_fault() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCheckApiKey(FakeDesk(check=unavailable())).run(dispatcher, tracker(KEY_SLOTS), {})
    assert slot(events, "key_status") == "unavailable"
    assert "says nothing about your key" in texts(dispatcher)


async def test_a_passing_key_moves_on_to_the_update() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCheckApiKey(FakeDesk()).run(dispatcher, tracker(KEY_SLOTS), {})
    assert slot(events, "key_status") == "passed"
    assert "passed every check" in texts(dispatcher)


async def test_what_the_exchange_cannot_tell_goes_to_the_checklist() -> None:
    desk = FakeDesk(check=diagnosis(no_ip_restriction=Status.UNKNOWN))
    events = await ActionCheckApiKey(desk).run(CollectingDispatcher(), tracker(KEY_SLOTS), {})
    assert slot(events, "key_status") == "unknown_items"
    assert slot(events, "unknown_items") == ["no_ip_restriction"]


async def test_an_expired_submission_asks_for_a_new_form() -> None:
    desk = FakeDesk(check=PendingCredentialInvalid("expired"))
    events = await ActionCheckApiKey(desk).run(CollectingDispatcher(), tracker(KEY_SLOTS), {})
    assert slot(events, "key_status") == "invalid_reference"


async def test_too_many_tests_waits_instead_of_calling_the_exchange() -> None:
    desk = FakeDesk(check=DiagnosisRateLimited("kraken", 300))
    dispatcher = CollectingDispatcher()
    events = await ActionCheckApiKey(desk).run(dispatcher, tracker(KEY_SLOTS), {})
    assert slot(events, "key_status") == "rate_limited"
    assert "5 minutes" in texts(dispatcher)


async def test_the_update_reports_the_masked_key_and_schedules_the_resync_check() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionUpdateCredentials(FakeDesk()).run(dispatcher, tracker(KEY_SLOTS), {})
    assert "****abcd" in texts(dispatcher)
    assert slot(events, "sync_run_id") == "77"
    reminders = [e for e in events if e.get("event") == "reminder"]
    assert reminders and reminders[0]["intent"] == "ask_sync_status"


async def test_an_untested_key_is_not_saved_and_the_user_is_told() -> None:
    desk = FakeDesk(update=DiagnosisNotPassed("not tested"))
    dispatcher = CollectingDispatcher()
    events = await ActionUpdateCredentials(desk).run(dispatcher, tracker(KEY_SLOTS), {})
    assert "Nothing was changed" in texts(dispatcher)
    assert SlotSet("credential_ref", None) in events


async def test_the_credential_form_goes_as_a_payload_and_a_link_never_asking_for_the_secret_in_chat() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskCredentialRef(FakeDesk()).run(
        dispatcher, tracker({"exchange": "kucoin", "wallet_id": "3"}), {}
    )
    payloads = [m["custom"] for m in dispatcher.messages if m.get("custom")]
    assert payloads and payloads[0]["type"] == "keymedic_credential_form"
    assert "not in the chat" in texts(dispatcher)
    assert "passphrase" in texts(dispatcher).lower()  # KuCoin's steps mention saving it


def _form_sent(wallet_id: int) -> list[dict[str, Any]]:
    """What the form's ask left in the tracker: its messages only (Rasa logs no event for an ask action)."""
    payload = {"type": "keymedic_credential_form", "wallet_id": wallet_id, "form_url": "http://x/f"}
    return [
        {"event": "bot", "text": "Here's how to make the new KuCoin key: ...", "data": {}},
        {"event": "bot", "text": "When you have it, ...", "data": {"custom": payload}},
        {"event": "slot", "name": "requested_slot", "value": "credential_ref"},
        {"event": "action", "name": "action_listen"},
    ]


FORM_STARTED = [
    {"event": "action", "name": "key_update_form"},
    {"event": "active_loop", "name": "key_update_form"},
    {"event": "slot", "name": "exchange", "value": "kucoin"},
    {"event": "slot", "name": "wallet_id", "value": "3"},
]
SIDE_QUESTION = [
    {"event": "action", "name": "action_answer_faq"},
    {"event": "action", "name": "key_update_form"},
]


async def test_asked_again_in_the_same_form_it_hands_over_the_form_without_repeating_the_steps() -> None:
    dispatcher = CollectingDispatcher()
    history = FORM_STARTED + _form_sent(3) + SIDE_QUESTION
    await ActionAskCredentialRef(FakeDesk()).run(
        dispatcher, tracker({"exchange": "kucoin", "wallet_id": "3"}, history=history), {}
    )
    payloads = [m["custom"] for m in dispatcher.messages if m.get("custom")]
    assert payloads and payloads[0]["type"] == "keymedic_credential_form"
    assert "Here's how to make" not in texts(dispatcher)
    assert "KuCoin key is ready" in texts(dispatcher) and "not in the chat" in texts(dispatcher)


@pytest.mark.parametrize(
    "history",
    [
        FORM_STARTED,  # the first ask of this form
        FORM_STARTED + _form_sent(7) + SIDE_QUESTION,  # the form was for another wallet
        _form_sent(3) + FORM_STARTED + SIDE_QUESTION,  # sent in an earlier run of the form
    ],
)
async def test_the_steps_come_with_the_first_form_for_a_wallet_in_each_run_of_the_form(
    history: list[dict[str, Any]],
) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskCredentialRef(FakeDesk()).run(
        dispatcher, tracker({"exchange": "kucoin", "wallet_id": "3"}, history=history), {}
    )
    assert "Here's how to make the new KuCoin key" in texts(dispatcher)


async def test_one_wallet_on_the_exchange_is_chosen_without_asking() -> None:
    desk = FakeDesk(wallet_list=[WalletView(5, "kraken", "default", "****1111", None)])
    result = await ValidateKeyUpdateForm(desk).validate_exchange(
        "Kraken Pro", CollectingDispatcher(), tracker(), {}
    )
    assert result == {"exchange": "kraken", "wallet_id": "5"}


async def test_an_exchange_not_connected_yet_becomes_a_new_wallet() -> None:
    desk = FakeDesk()
    dispatcher = CollectingDispatcher()
    result = await ValidateKeyUpdateForm(desk).validate_exchange("okex", dispatcher, tracker(), {})
    assert result == {"exchange": "okx", "wallet_id": "99"}
    assert ("connect_wallet", ("okx",)) in desk.calls


async def test_two_wallets_on_the_exchange_leave_the_choice_to_the_user() -> None:
    desk = FakeDesk(
        wallet_list=[
            WalletView(5, "kraken", "default", "****1111", None),
            WalletView(6, "kraken", "trading", None, None),
        ]
    )
    result = await ValidateKeyUpdateForm(desk).validate_exchange(
        "kraken", CollectingDispatcher(), tracker(), {}
    )
    assert result == {"exchange": "kraken"}


async def test_an_unknown_exchange_name_is_asked_again() -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateKeyUpdateForm(FakeDesk()).validate_exchange("my bank", dispatcher, tracker(), {})
    assert result == {"exchange": None}


async def test_chat_text_is_never_taken_as_a_credential() -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateKeyUpdateForm(FakeDesk()).validate_credential_ref(
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz", dispatcher, tracker(), {}
    )
    assert result == {"credential_ref": None}
    assert "form" in texts(dispatcher)


async def test_removal_states_the_edits_at_stake_and_offers_support_without_removal_steps() -> None:
    desk = FakeDesk(wallet_list=[WalletView(1, "kraken", "default", "****1111", None)])
    dispatcher = CollectingDispatcher()
    await ActionRemovalImpact(desk, FakeHandoff()).run(dispatcher, tracker({"exchange": "kraken"}), {})
    text = texts(dispatcher)
    assert (
        "8 manual edits" in text and "3 category changes" in text and "2 manually added transactions" in text
    )
    assert "support" in text
    buttons = [b["payload"] for m in dispatcher.messages for b in m.get("buttons", [])]
    assert "/request_human" in buttons
    assert "Wallets page" not in text and "[...]" not in text


async def test_removal_steps_come_only_after_support_approved_on_the_ticket() -> None:
    desk = FakeDesk(wallet_list=[WalletView(1, "kraken", "default", "****1111", None)])
    dispatcher = CollectingDispatcher()
    await ActionRemovalImpact(desk, FakeHandoff(approved=True)).run(
        dispatcher, tracker({"exchange": "kraken"}), {}
    )
    text = texts(dispatcher)
    assert "Support approved removing Kraken" in text
    assert "8 manual edits" in text and "Wallets page" in text


async def test_the_hand_off_records_the_transcript_and_pauses_the_bot() -> None:
    desk, handoff = FakeDesk(), FakeHandoff()
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffToSupport(desk, handoff).run(
        dispatcher, tracker({"wallet_id": "1", "checklist_format": True}, intent="request_human"), {}
    )
    assert handoff.transcripts == ["demo"]
    assert (
        "open_ticket",
        ({"reason": "user asked for a person", "wallet_id": 1, "checklist": {"checklist_format": True}},),
    ) in desk.calls
    assert "#12" in texts(dispatcher)
    assert [e["event"] for e in events][-1] == "pause"
    assert {"event": "active_loop", "name": None, "timestamp": None} in events
