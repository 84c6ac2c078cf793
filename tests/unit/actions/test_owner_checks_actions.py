"""Ids typed in as `/intent{json}` by another user are refused with an answer that reveals nothing, through
the actions and the real `SupportDesk` on the demo data (issue 15, item 7)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions.handoff import ActionHandoffToSupport
from actions.key_update import (
    SYNC_CHECK_MAX,
    ActionAskCredentialRef,
    ActionCheckApiKey,
    ActionReportSync,
    _attempt,
)
from bot.assistant import SupportDesk
from bot.store import orm
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from tests.unit.actions.fakes import FakeHandoff


def conversation(
    sender: str, slots: dict[str, Any], *, intent: str = "inform", entities: dict[str, str] | None = None
) -> Tracker:
    """A REST conversation of `sender` whose latest message is `/intent{entities}`."""
    return Tracker(
        sender_id=sender,
        slots=slots,
        latest_message={
            "intent": {"name": intent},
            "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
            "text": "",
        },
        events=[{"event": "user", "text": "", "input_channel": "rest", "parse_data": {}}],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


def texts(dispatcher: CollectingDispatcher) -> str:
    return "\n".join(str(m.get("text") or "") for m in dispatcher.messages)


async def demo_kraken(desk: SupportDesk) -> int:
    return next(w.wallet_id for w in await desk.wallets("rest", "demo") if w.exchange == "kraken")


def newest_run(desk: SupportDesk, wallet_id: int) -> int:
    uow = SqlAlchemyUnitOfWork(create_database(desk.settings.database_url), load_key_ring(desk.settings))
    with uow:
        query = select(func.max(orm.sync_runs.c.id)).where(orm.sync_runs.c.wallet_id == wallet_id)
        return int(uow.session.scalar(query))


async def test_asking_for_another_users_resync_reports_nothing_and_schedules_nothing(
    desk: SupportDesk,
) -> None:
    run_id = str(newest_run(desk, await demo_kraken(desk)))  # the demo's failed Kraken sync
    await desk.connect_wallet("rest", "mallory", "kraken")
    dispatcher = CollectingDispatcher()
    events = await ActionReportSync(desk).run(
        dispatcher,
        conversation("mallory", {}, intent="ask_sync_status", entities={"sync_run_id": run_id}),
        {},
    )
    assert events == []  # no reminder: mallory's conversation will not keep watching the demo's run
    assert texts(dispatcher) == "I couldn't find that resync among your wallets."
    owner = CollectingDispatcher()
    await ActionReportSync(desk).run(
        owner, conversation("demo", {}, intent="ask_sync_status", entities={"sync_run_id": run_id}), {}
    )
    assert "EAPI:Invalid key" in texts(owner)  # the owner is told


def test_the_reminder_attempt_typed_in_stays_within_its_bounds() -> None:
    assert _attempt("-999") == 1
    assert _attempt("5000") == SYNC_CHECK_MAX
    assert _attempt("not a number") == SYNC_CHECK_MAX
    assert _attempt(None) == SYNC_CHECK_MAX
    assert _attempt("3") == 3


async def test_a_typed_in_wallet_of_another_user_gets_no_form_and_no_key_test(desk: SupportDesk) -> None:
    victim = str(await demo_kraken(desk))
    await desk.connect_wallet("rest", "mallory", "kraken")
    slots = {"exchange": "kraken", "wallet_id": victim, "credential_ref": "pc_whatever"}

    asked = CollectingDispatcher()
    events = await ActionAskCredentialRef(desk).run(asked, conversation("mallory", slots), {})
    assert texts(asked) == "I couldn't find that connection among your wallets."
    assert not any(m.get("json_message") for m in asked.messages)  # no intake token for the demo's wallet
    assert events == [{"event": "slot", "timestamp": None, "name": "wallet_id", "value": None}]

    checked = CollectingDispatcher()
    await ActionCheckApiKey(desk).run(checked, conversation("mallory", slots), {})
    assert "expired or was already used" in texts(checked)


async def test_a_hand_off_with_another_users_wallet_typed_in_still_reaches_support(desk: SupportDesk) -> None:
    victim = str(await demo_kraken(desk))
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffToSupport(desk, FakeHandoff()).run(
        dispatcher, conversation("mallory", {"wallet_id": victim}, intent="request_human"), {}
    )
    assert "passed this to our support team" in texts(dispatcher)
    assert any(e.get("event") == "pause" for e in events)
