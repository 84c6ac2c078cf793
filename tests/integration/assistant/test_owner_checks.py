"""Every id a user can type is checked against the conversation's owner (issue 15, item 7).

Rasa parses `/intent{json}` on every channel, so a sync run, a wallet or an intake reference can arrive in an
entity from anyone. Here `mallory` (a REST sender with a Kraken wallet of her own) names the demo user's ids
through the same `SupportDesk` calls the actions make, and is refused with the error an unknown id gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.assistant import SupportDesk
from bot.config import load_settings
from bot.demo import prepare_database
from bot.secret import Secret
from bot.store import orm, services
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

pytestmark = pytest.mark.integration

CHANNEL, DEMO, MALLORY = "rest", "demo", "mallory"


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SupportDesk]:
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", f"sqlite:///{tmp_path / 'keymedic.db'}")
    settings = load_settings()
    assert prepare_database(settings)
    yield SupportDesk(settings, enqueue_resync=lambda run_id: None, enqueue_delivery=lambda: None)


def _uow(desk: SupportDesk) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(create_database(desk.settings.database_url), load_key_ring(desk.settings))


async def _demo_kraken(desk: SupportDesk) -> int:
    return next(w.wallet_id for w in await desk.wallets(CHANNEL, DEMO) if w.exchange == "kraken")


def _demo_sync_run(desk: SupportDesk, wallet_id: int) -> int:
    uow = _uow(desk)
    with uow:
        # The demo's failed Kraken sync (bot/demo.py), the newest run of that wallet.
        return int(
            uow.session.scalar(
                select(func.max(orm.sync_runs.c.id)).where(orm.sync_runs.c.wallet_id == wallet_id)
            )
        )


def _pending(desk: SupportDesk, wallet_id: int) -> str:
    credentials = Credentials(api_key="K" * 56, api_secret=Secret("S" * 88))
    return services.store_pending_credential(_uow(desk), wallet_id=wallet_id, credentials=credentials)


async def test_another_users_sync_run_is_refused_like_one_that_does_not_exist(desk: SupportDesk) -> None:
    run_id = _demo_sync_run(desk, await _demo_kraken(desk))
    await desk.connect_wallet(CHANNEL, MALLORY, "kraken")

    own = await desk.sync_report(CHANNEL, DEMO, run_id)
    assert own.status == "failed" and own.error  # the owner sees it
    with pytest.raises(services.NotFound) as foreign:
        await desk.sync_report(CHANNEL, MALLORY, run_id)
    with pytest.raises(services.NotFound) as missing:
        await desk.sync_report(CHANNEL, MALLORY, 999_999)
    with pytest.raises(services.NotFound):
        await desk.sync_report(CHANNEL, "a-stranger", run_id)  # no KeyMedic user at all
    assert str(foreign.value) == str(missing.value).replace("999999", str(run_id))


async def test_another_users_wallet_is_refused_in_every_use_case(desk: SupportDesk) -> None:
    victim = await _demo_kraken(desk)
    await desk.connect_wallet(CHANNEL, MALLORY, "kraken")
    reference = _pending(desk, victim)
    for attempt in (
        desk.credential_form(CHANNEL, MALLORY, MALLORY, victim),
        desk.check_key(CHANNEL, MALLORY, MALLORY, victim, reference),
        desk.update_key(CHANNEL, MALLORY, victim, reference),
        desk.update_confirmed_key(CHANNEL, MALLORY, MALLORY, victim, reference, list(Item)),
        desk.removal_impact(CHANNEL, MALLORY, victim),
    ):
        with pytest.raises(services.NotFound):
            await attempt


async def test_another_users_reference_does_not_work_on_ones_own_wallet(desk: SupportDesk) -> None:
    victims_reference = _pending(desk, await _demo_kraken(desk))
    own = await desk.connect_wallet(CHANNEL, MALLORY, "kraken")
    with pytest.raises(services.PendingCredentialInvalid):
        await desk.check_key(CHANNEL, MALLORY, MALLORY, own.wallet_id, victims_reference)
    with pytest.raises(services.PendingCredentialInvalid):
        await desk.update_key(CHANNEL, MALLORY, own.wallet_id, victims_reference)
    with pytest.raises(services.PendingCredentialInvalid):
        await desk.update_confirmed_key(
            CHANNEL, MALLORY, MALLORY, own.wallet_id, victims_reference, list(Item)
        )


async def test_a_hand_off_naming_another_users_wallet_carries_nothing_of_it(desk: SupportDesk) -> None:
    victim = await _demo_kraken(desk)
    ticket_id = await desk.open_ticket(
        CHANNEL, MALLORY, MALLORY, reason="user asked for a person", wallet_id=victim
    )
    uow = _uow(desk)
    with uow:
        ticket = uow.tickets.get(ticket_id)
        assert ticket is not None
        assert ticket.wallet_id is None  # the hand-off goes on, without the demo user's wallet
        assert "removal_impact" not in ticket.payload and "diagnosis" not in ticket.payload
