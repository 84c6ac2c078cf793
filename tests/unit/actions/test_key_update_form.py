"""`validate_key_update_form` through rasa_sdk's own `run()`, with the real domain and the real
`SupportDesk` on a SQLite copy of the demo data: the typed `pc_…` reference is taken whole, and a new key
update finds the right wallet whether it follows a finished one, a failed one or KeyMedic's outreach."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasa_sdk import Tracker

from bot.assistant import SupportDesk
from tests.unit.actions.validation import demo_wallets, validate

# A reference as bot/store/services.py makes them ("pc_" + token_urlsafe(24)) that happens to end in "-".
DASHED = "pc_UYgYpB8dPY0hxGZC2ZdRdE-6Now2WZk-"


def form_tracker(
    *,
    slots: dict[str, Any],
    candidates: dict[str, Any],
    text: str = "",
    entities: Iterable[dict[str, Any]] = (),
    history: Iterable[dict[str, Any]] = (),
    starting: bool,
) -> Tracker:
    """The tracker Rasa's FormAction sends to the validation action: the conversation so far, the user's
    latest message (and, when the form starts with it, the loop's activation), then the slot candidates of
    this turn after a `key_update_form` action event. The active loop is the form either way: Rasa sets it
    before it validates the slots filled before the start."""
    entities = list(entities)
    user = {
        "event": "user",
        "text": text,
        "input_channel": "rest",
        "parse_data": {"entities": entities, "intent": {"name": "inform"}},
    }
    activation = [{"event": "active_loop", "name": "key_update_form"}] if starting else []
    events = [*history, user, *activation, {"event": "action", "name": "key_update_form"}]
    events += [{"event": "slot", "name": name, "value": value} for name, value in candidates.items()]
    return Tracker(
        sender_id="demo",
        slots={**slots, **candidates},
        latest_message={"intent": {"name": "inform"}, "entities": entities, "text": text},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": "key_update_form"},
        latest_action_name="key_update_form",
    )


def entity(name: str, value: str, text: str) -> dict[str, Any]:
    start = text.index(value)
    return {"entity": name, "value": value, "start": start, "end": start + len(value)}


SAVED_KRAKEN_KEY: list[dict[str, Any]] = [
    {"event": "slot", "name": "exchange", "value": "kraken"},
    {"event": "slot", "name": "wallet_id", "value": "1"},
    {"event": "action", "name": "action_check_api_key"},
    {"event": "slot", "name": "key_status", "value": "passed"},
    {"event": "action", "name": "action_update_credentials"},
    {"event": "slot", "name": "sync_run_id", "value": "5"},
    {"event": "slot", "name": "credential_ref", "value": None},
]


async def test_a_typed_reference_ending_in_a_dash_is_taken_whole(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    text = f"submitted {DASHED}"
    # Rasa's WhitespaceTokenizer drops the trailing "-", so the NLU entity (and its slot) is one short.
    truncated = DASHED.rstrip("-")
    tracker = form_tracker(
        slots={"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"},
        candidates={"credential_ref": truncated},
        text=text,
        entities=[entity("credential_ref", truncated, text)],
        starting=False,
    )
    slots, said = await validate(desk, tracker)
    assert slots["credential_ref"] == DASHED
    assert said == []


async def test_a_reference_is_read_from_the_text_even_when_nlu_found_no_entity(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    tracker = form_tracker(
        slots={"exchange": "kucoin", "wallet_id": wallets["kucoin"], "requested_slot": "credential_ref"},
        candidates={},
        text=f"here you go: {DASHED}.",
        starting=False,
    )
    slots, _ = await validate(desk, tracker)
    assert slots["credential_ref"] == DASHED


async def test_chat_text_without_a_reference_is_still_refused(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    secret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz"
    tracker = form_tracker(
        slots={"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"},
        candidates={"credential_ref": secret},
        text=secret,
        starting=False,
    )
    slots, said = await validate(desk, tracker)
    assert slots["credential_ref"] is None
    assert any("secure form" in text for text in said)


async def test_a_second_wallet_named_after_a_saved_key_gets_its_own_wallet(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    text = "now my kucoin key was revoked too"
    # Starting the form again: the exchange the user just named, and the first update's wallet.
    tracker = form_tracker(
        slots={"key_status": "passed"},
        candidates={"exchange": "kucoin", "wallet_id": wallets["kraken"]},
        text=text,
        entities=[entity("exchange", "kucoin", text)],
        history=[*SAVED_KRAKEN_KEY, {"event": "slot", "name": "exchange", "value": "kucoin"}],
        starting=True,
    )
    slots, said = await validate(desk, tracker)
    assert slots["exchange"] == "kucoin"
    assert slots["wallet_id"] == wallets["kucoin"]
    assert said == []  # no "pick one of the connections" for a wallet the user never picked


async def test_a_second_wallet_not_named_after_a_saved_key_is_asked_for(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    tracker = form_tracker(
        slots={"key_status": "passed"},
        candidates={"exchange": "kraken", "wallet_id": wallets["kraken"]},
        text="my other wallet stopped syncing too",
        history=SAVED_KRAKEN_KEY,
        starting=True,
    )
    slots, said = await validate(desk, tracker)
    assert slots["exchange"] is None and slots["wallet_id"] is None
    assert slots["key_status"] is None
    assert said == []


async def test_outreach_about_a_wallet_keeps_that_wallet_after_an_earlier_saved_key(
    desk: SupportDesk,
) -> None:
    wallets = await demo_wallets(desk)
    outreach: list[dict[str, Any]] = [
        {"event": "user", "text": None, "parse_data": {"intent": {"name": "EXTERNAL_key_failed"}}},
        {"event": "slot", "name": "exchange", "value": "coinbase"},
        {"event": "slot", "name": "wallet_id", "value": wallets["coinbase"]},
        {"event": "action", "name": "utter_outreach_key_failed"},
    ]
    tracker = form_tracker(
        slots={"key_status": "passed"},
        candidates={"exchange": "coinbase", "wallet_id": wallets["coinbase"]},
        text="yes",
        history=[*SAVED_KRAKEN_KEY, *outreach],
        starting=True,
    )
    slots, _ = await validate(desk, tracker)
    assert slots["exchange"] == "coinbase" and slots["wallet_id"] == wallets["coinbase"]


async def test_a_retry_after_a_failed_key_keeps_the_wallet(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    tracker = form_tracker(
        slots={"key_status": "failed"},
        candidates={"exchange": "binance", "wallet_id": wallets["binance"]},
        text="/update_key",
        starting=True,
    )
    slots, _ = await validate(desk, tracker)
    assert slots == {"exchange": "binance", "wallet_id": wallets["binance"]}


async def test_a_switch_of_wallet_drops_the_other_wallets_reference(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    text = "my kucoin one is broken as well"
    tracker = form_tracker(
        slots={"key_status": "unavailable"},
        candidates={"exchange": "kucoin", "wallet_id": wallets["kraken"], "credential_ref": "pc_for_kraken"},
        text=text,
        entities=[entity("exchange", "kucoin", text)],
        starting=True,
    )
    slots, _ = await validate(desk, tracker)
    assert slots["wallet_id"] == wallets["kucoin"]
    assert slots["credential_ref"] is None  # that reference is bound to the Kraken wallet


async def test_several_wallets_on_the_named_exchange_are_asked_about(desk: SupportDesk) -> None:
    from bot.store import services
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    wallets = await demo_wallets(desk)
    database = create_database(desk.settings.database_url)
    uow = SqlAlchemyUnitOfWork(database, load_key_ring(desk.settings))
    with uow:
        demo = uow.users.by_handle("demo")
        assert demo is not None and demo.id is not None
        services.get_or_create_wallet(uow, user_id=demo.id, exchange="kraken", account_label="trading")
        uow.commit()
    database.dispose()

    text = "my kraken key is invalid"
    tracker = form_tracker(
        slots={"key_status": "failed"},
        candidates={"exchange": "kraken", "wallet_id": wallets["binance"]},
        text=text,
        entities=[entity("exchange", "kraken", text)],
        starting=True,
    )
    slots, said = await validate(desk, tracker)
    assert slots["exchange"] == "kraken"
    assert slots["wallet_id"] is None  # the Binance wallet is not one of them: the form asks which
    assert said == []


async def test_a_wallet_of_another_exchange_picked_by_the_user_is_refused(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    text = f'/inform{{"wallet_id": "{wallets["binance"]}"}}'
    tracker = form_tracker(
        slots={"exchange": "kraken", "requested_slot": "wallet_id"},
        candidates={"wallet_id": wallets["binance"]},
        text=text,
        entities=[{"entity": "wallet_id", "value": wallets["binance"]}],
        starting=False,
    )
    slots, said = await validate(desk, tracker)
    assert slots["wallet_id"] is None
    assert said == ["Please pick one of the connections listed."]


async def test_a_running_form_keeps_its_wallet_after_an_earlier_saved_key(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    tracker = form_tracker(
        slots={"key_status": "passed", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"},
        candidates={"exchange": "kraken"},
        text="it's the kraken one",
        history=SAVED_KRAKEN_KEY,
        starting=False,
    )
    slots, _ = await validate(desk, tracker)
    assert slots["exchange"] == "kraken"
    assert slots.get("wallet_id", wallets["kraken"]) == wallets["kraken"]
