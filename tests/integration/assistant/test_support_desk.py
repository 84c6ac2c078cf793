"""The conversation's use cases end to end below Rasa: the demo user, the real intake service, the live
diagnosis against the sandbox over HTTP, the store on SQLite, and the resync job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.assistant import SupportDesk
from bot.config import load_settings
from bot.demo import prepare_database
from bot.diagnosis.service import reset_rate_limits
from bot.exchanges._http import aclose_shared_client
from bot.intake import submit_credentials
from bot.jobs import run_resync
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for
from bot.store import services
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

pytestmark = pytest.mark.integration

CHANNEL, DEMO = "rest", "demo"


@pytest.fixture
async def desk(
    tmp_path: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SupportDesk]:
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", f"sqlite:///{tmp_path / 'keymedic.db'}")
    for exchange in SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{sandbox_url}/{exchange}")
    settings = load_settings()
    assert prepare_database(settings)
    queued: list[int] = []
    reset_rate_limits()  # each test is a fresh user session as far as the anti-oracle limit goes
    yield SupportDesk(settings, enqueue_resync=queued.append)
    await aclose_shared_client()  # its connections belong to this test's event loop


def _uow(desk: SupportDesk) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(create_database(desk.settings.database_url), load_key_ring(desk.settings))


async def _submit(desk: SupportDesk, wallet_id: int, exchange: str, scenario: str) -> str:
    """What the widget does: open the form for the wallet, post the sandbox key, keep only the reference."""
    form = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    fields = {"wallet_id": wallet_id, **credentials_for(exchange, scenario)}
    receipt = submit_credentials(_uow(desk), form["token"], user_id=None, fields=fields)
    return receipt.reference


async def _wallet(desk: SupportDesk, exchange: str) -> int:
    return next(w.wallet_id for w in await desk.wallets(CHANNEL, DEMO) if w.exchange == exchange)


async def test_the_demo_user_sees_each_wallet_with_its_key_masked(desk: SupportDesk) -> None:
    wallets = await desk.wallets(CHANNEL, DEMO)
    assert {w.exchange for w in wallets} >= {"kraken", "coinbase", "kucoin", "binance"}
    assert all(w.masked_key and w.masked_key.startswith("****") for w in wallets)


async def test_a_stranger_has_no_wallets(desk: SupportDesk) -> None:
    assert await desk.wallets(CHANNEL, "someone-new") == []


async def test_a_passing_key_replaces_the_revoked_one_in_place_and_the_resync_keeps_the_edits(
    desk: SupportDesk,
) -> None:
    kraken = await _wallet(desk, "kraken")
    edits_before = await desk.removal_impact(CHANNEL, DEMO, kraken)
    reference = await _submit(desk, kraken, "kraken", "valid")

    check = await desk.check_key(CHANNEL, DEMO, "conv-1", kraken, reference)
    assert check.diagnosis.all_passed, check.diagnosis.to_dict()
    updated = await desk.update_key(CHANNEL, DEMO, kraken, reference)

    assert updated.wallet_id == kraken
    assert [w.wallet_id for w in await desk.wallets(CHANNEL, DEMO) if w.exchange == "kraken"] == [kraken]
    # The worker's job, in its own thread as in the worker (it runs its own event loop).
    assert (await asyncio.to_thread(run_resync, updated.sync_run_id))["status"] == "succeeded"
    report = await desk.sync_report(CHANNEL, DEMO, updated.sync_run_id)
    # The demo's Kraken rows are the sandbox's own history (bot/demo.py): the resync merges, adding none.
    assert report.finished and report.added == 0 and report.updated + report.unchanged == 40
    assert await desk.removal_impact(CHANNEL, DEMO, kraken) == edits_before


async def test_a_key_with_withdrawals_on_fails_and_cannot_be_saved(desk: SupportDesk) -> None:
    kraken = await _wallet(desk, "kraken")
    reference = await _submit(desk, kraken, "kraken", "withdrawals_enabled")

    check = await desk.check_key(CHANNEL, DEMO, "conv-1", kraken, reference)

    assert [o.item.value for o in check.diagnosis.failing()] == ["no_trade_or_withdraw"]
    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_key(CHANNEL, DEMO, kraken, reference)


async def test_an_untested_key_is_never_saved(desk: SupportDesk) -> None:
    coinbase = await _wallet(desk, "coinbase")
    reference = await _submit(desk, coinbase, "coinbase", "valid")
    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_key(CHANNEL, DEMO, coinbase, reference)


async def test_another_users_wallet_is_out_of_reach(desk: SupportDesk) -> None:
    kraken = await _wallet(desk, "kraken")
    with pytest.raises(services.NotFound):
        await desk.credential_form(CHANNEL, "someone-else", "conv-9", kraken)
    with pytest.raises(services.NotFound):
        await desk.removal_impact(CHANNEL, "someone-else", kraken)


async def test_removal_impact_counts_the_demo_edits_by_kind(desk: SupportDesk) -> None:
    impact = await desk.removal_impact(CHANNEL, DEMO, await _wallet(desk, "kraken"))
    assert impact.to_dict() == {
        "category_changes": 3,
        "notes": 2,
        "cost_basis_changes": 1,
        "manual_transactions": 2,
        "total": 8,
    }


async def test_one_ticket_per_conversation_carries_the_latest_diagnosis(desk: SupportDesk) -> None:
    kraken = await _wallet(desk, "kraken")
    reference = await _submit(desk, kraken, "kraken", "ip_whitelist")
    await desk.check_key(CHANNEL, DEMO, "conv-1", kraken, reference)

    first = await desk.open_ticket(CHANNEL, DEMO, "conv-1", reason="key still failing", wallet_id=kraken)
    second = await desk.open_ticket(CHANNEL, DEMO, "conv-1", reason="user asked for a person")

    assert first == second
    uow = _uow(desk)
    with uow:
        ticket = uow.tickets.get(first)
        assert ticket is not None
        assert ticket.payload["diagnosis"]["all_passed"] is False
        assert ticket.payload["removal_impact"]["notes"] == 2
        assert ticket.payload["reasons"] == ["key still failing", "user asked for a person"]


async def test_connecting_a_new_exchange_makes_one_wallet_without_a_key(desk: SupportDesk) -> None:
    first = await desk.connect_wallet(CHANNEL, DEMO, "okx")
    again = await desk.connect_wallet(CHANNEL, DEMO, "okx")
    assert first.wallet_id == again.wallet_id
    assert first.masked_key is None


def test_settings_replace_keeps_the_desk_lazy() -> None:
    # Building a desk touches nothing: rasa_sdk instantiates every action (and so its desk) at import time.
    desk = SupportDesk(replace(load_settings(), database_url="sqlite:////nonexistent/dir/db.sqlite"))
    assert desk.settings.database_url == "sqlite:////nonexistent/dir/db.sqlite"
    assert not Path("/nonexistent").exists()  # no database file, no directory for one
