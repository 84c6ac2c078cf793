"""The removal guardrail and the CSV backup on the real `SupportDesk` (demo data in SQLite): the exchange the
message names wins, and a removal question in the middle of a form leaves the form's wallet alone."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.guidance import ActionCsvBackup
from actions.removal import ActionRemovalImpact
from bot.assistant import SupportDesk
from tests.unit.actions.fakes import FakeHandoff
from tests.unit.test_no_removal_steps import removal_steps


def tracker(
    slots: dict[str, Any], *, text: str, intent: str, exchange: str | None = None, form: str | None = None
) -> Tracker:
    entities = []
    if exchange is not None:
        start = text.lower().index(exchange)
        entities = [{"entity": "exchange", "value": exchange, "start": start, "end": start + len(exchange)}]
    return Tracker(
        sender_id="demo",
        slots=slots,
        latest_message={"intent": {"name": intent}, "entities": entities, "text": text},
        events=[{"event": "user", "text": text, "input_channel": "rest", "parse_data": {}}],
        paused=False,
        followup_action=None,
        active_loop={"name": form} if form else {},
        latest_action_name="action_listen",
    )


async def run_removal(desk: SupportDesk, t: Tracker) -> tuple[str, list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionRemovalImpact(desk, FakeHandoff()).run(dispatcher, t, {})
    return "\n".join(str(m.get("text")) for m in dispatcher.messages), events


async def test_the_exchange_named_in_the_message_wins_over_the_conversation(desk: SupportDesk) -> None:
    wallets = {w.exchange: str(w.wallet_id) for w in await desk.wallets("rest", "demo")}
    text = "can I just delete coinbase and add it again?"
    t = tracker(
        {"exchange": "kraken", "wallet_id": wallets["kraken"]},
        text=text,
        intent="remove_exchange",
        exchange="coinbase",
    )
    said, events = await run_removal(desk, t)
    assert "Removing Coinbase would permanently delete 1 manual edit: 1 note" in said
    assert removal_steps(said) == []
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert slots == {"exchange": "coinbase", "wallet_id": wallets["coinbase"]}


async def test_without_a_name_the_conversations_wallet_is_meant(desk: SupportDesk) -> None:
    wallets = {w.exchange: str(w.wallet_id) for w in await desk.wallets("rest", "demo")}
    t = tracker({"wallet_id": wallets["kraken"]}, text="should I just remove it?", intent="remove_exchange")
    said, _ = await run_removal(desk, t)
    assert "Removing Kraken would permanently delete 8 manual edits" in said


async def test_a_removal_question_in_the_middle_of_a_form_keeps_the_forms_wallet(desk: SupportDesk) -> None:
    wallets = {w.exchange: str(w.wallet_id) for w in await desk.wallets("rest", "demo")}
    text = "or should I delete coinbase instead?"
    t = tracker(
        {"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"},
        text=text,
        intent="remove_exchange",
        exchange="coinbase",
        form="key_update_form",
    )
    said, events = await run_removal(desk, t)
    assert "Coinbase" in said
    assert [e for e in events if e.get("event") == "slot"] == []  # the form goes on with Kraken


async def test_the_csv_backup_follows_the_exchange_the_user_names() -> None:
    text = "how do I export a csv from kraken?"
    dispatcher = CollectingDispatcher()
    await ActionCsvBackup().run(
        dispatcher, tracker({"exchange": "kucoin"}, text=text, intent="upload_csv", exchange="kraken"), {}
    )
    (message,) = dispatcher.messages
    assert "from Kraken as a CSV file" in str(message["text"])


async def test_a_misspelt_exchange_in_a_removal_question_is_the_wallet_meant(desk: SupportDesk) -> None:
    wallets = {w.exchange: str(w.wallet_id) for w in await desk.wallets("rest", "demo")}
    # NLU tags no entity for a typo; the conversation was about Kraken.
    t = tracker(
        {"exchange": "kraken", "wallet_id": wallets["kraken"]},
        text="could I just remove my coinbsae wallet?",
        intent="remove_exchange",
    )
    said, events = await run_removal(desk, t)
    assert "Removing Coinbase would permanently delete" in said
    assert removal_steps(said) == []
