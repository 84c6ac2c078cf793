"""A key the exchange accepted but can't fully describe (Crypto.com, Bitfinex) is saved once the user confirms
each item the live test could not see — and only then, only for its owner, only for an accepted key. Real
desk, real intake, live diagnosis against the sandbox over HTTP, the store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
from bot.store.model import CredentialStatus
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.diagnosis import Item

pytestmark = pytest.mark.integration

CHANNEL, DEMO, CONVERSATION = "rest", "demo", "demo"


@pytest.fixture
async def desk(
    tmp_path: Path, database_url: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SupportDesk]:
    # On SQLite and PostgreSQL (`database_url`): the confirmations are a JSON change on the test's record.
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    for exchange in SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{sandbox_url}/{exchange}")
    settings = load_settings()
    assert prepare_database(settings)
    reset_rate_limits()
    yield SupportDesk(settings, enqueue_resync=lambda run_id: None)
    await aclose_shared_client()


def _uow(desk: SupportDesk) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(create_database(desk.settings.database_url), load_key_ring(desk.settings))


async def _tested(desk: SupportDesk, exchange: str, scenario: str) -> tuple[int, str, frozenset[Item]]:
    """The demo user's wallet on `exchange` with the sandbox's `scenario` key submitted and tested live:
    (wallet id, intake reference, the items the test left unknown)."""
    wallet_id = (await desk.connect_wallet(CHANNEL, DEMO, exchange)).wallet_id
    form = await desk.credential_form(CHANNEL, DEMO, CONVERSATION, wallet_id)
    fields = {"wallet_id": wallet_id, **credentials_for(exchange, scenario)}
    reference = submit_credentials(_uow(desk), form["token"], user_id=None, fields=fields).reference
    check = await desk.check_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference)
    return wallet_id, reference, frozenset(o.item for o in check.diagnosis.unknown())


def _statuses(desk: SupportDesk, wallet_id: int) -> list[CredentialStatus]:
    uow = _uow(desk)
    with uow:
        return [c.status for c in uow.credentials.for_wallet(wallet_id, *CredentialStatus)]


@pytest.mark.parametrize("exchange", ["crypto_com", "bitfinex"])
async def test_a_working_key_with_every_unseen_item_confirmed_is_saved_and_resynced(
    desk: SupportDesk, exchange: str
) -> None:
    wallet_id, reference, unknown = await _tested(desk, exchange, "valid")
    assert Item.NO_IP_RESTRICTION in unknown
    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_key(CHANNEL, DEMO, wallet_id, reference)  # not passed outright

    updated = await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, unknown)

    assert updated.wallet_id == wallet_id and updated.masked_key.startswith("****")
    assert _statuses(desk, wallet_id) == [CredentialStatus.ACTIVE]
    assert (await asyncio.to_thread(run_resync, updated.sync_run_id))["status"] == "succeeded"
    uow = _uow(desk)
    with uow:
        record = uow.diagnoses.latest_for_wallet(wallet_id)
        assert record is not None
        confirmed = record.outcome["user_confirmed"]
    assert set(confirmed["items"]) == {item.value for item in unknown}
    assert confirmed["conversation_id"] == CONVERSATION and confirmed["at"]


async def test_support_sees_what_was_taken_on_the_users_word(desk: SupportDesk) -> None:
    wallet_id, reference, unknown = await _tested(desk, "crypto_com", "valid")
    await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, unknown)

    ticket_id = await desk.open_ticket(
        CHANNEL, DEMO, CONVERSATION, reason="sync question", wallet_id=wallet_id
    )

    uow = _uow(desk)
    with uow:
        ticket = uow.tickets.get(ticket_id)
        assert ticket is not None
        assert ticket.payload["diagnosis"]["user_confirmed"]["items"] == [
            "no_trade_or_withdraw",
            "no_ip_restriction",
        ]


async def test_a_refused_key_is_never_saved_whatever_the_user_confirms(desk: SupportDesk) -> None:
    # Crypto.com's 40101 leaves the key and the secret "unknown": a refusal, not something a yes can settle.
    wallet_id, reference, unknown = await _tested(desk, "crypto_com", "wrong_secret")
    assert {Item.KEY_KNOWN, Item.SECRET_OK} <= unknown

    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, list(Item))
    assert _statuses(desk, wallet_id) == [CredentialStatus.PENDING]


async def test_a_failed_item_is_never_confirmed_away(desk: SupportDesk) -> None:
    wallet_id, reference, _ = await _tested(desk, "bitfinex", "withdrawals_enabled")
    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, list(Item))
    assert _statuses(desk, wallet_id) == [CredentialStatus.PENDING]


async def test_an_unconfirmed_item_keeps_the_key_pending_and_nothing_is_recorded(desk: SupportDesk) -> None:
    wallet_id, reference, unknown = await _tested(desk, "crypto_com", "valid")
    confirmed = unknown - {Item.NO_IP_RESTRICTION}  # the user said no to the allow-list question

    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, confirmed)

    assert _statuses(desk, wallet_id) == [CredentialStatus.PENDING]
    uow = _uow(desk)
    with uow:
        record = uow.diagnoses.latest_for_wallet(wallet_id)
        assert record is not None and "user_confirmed" not in record.outcome
    # The same submission is still good once the user has fixed it and confirms everything.
    await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, unknown)
    assert _statuses(desk, wallet_id) == [CredentialStatus.ACTIVE]


async def test_another_users_reference_is_refused(desk: SupportDesk) -> None:
    wallet_id, reference, unknown = await _tested(desk, "crypto_com", "valid")
    with pytest.raises(services.NotFound):
        await desk.update_confirmed_key(
            CHANNEL, "someone-else", "someone-else", wallet_id, reference, unknown
        )
    assert _statuses(desk, wallet_id) == [CredentialStatus.PENDING]


async def test_confirmations_from_another_conversation_are_refused(desk: SupportDesk) -> None:
    wallet_id, reference, unknown = await _tested(desk, "crypto_com", "valid")
    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_confirmed_key(CHANNEL, DEMO, "another-thread", wallet_id, reference, unknown)
    assert _statuses(desk, wallet_id) == [CredentialStatus.PENDING]


async def test_an_untested_key_is_never_saved(desk: SupportDesk) -> None:
    wallet_id = (await desk.connect_wallet(CHANNEL, DEMO, "bitfinex")).wallet_id
    form = await desk.credential_form(CHANNEL, DEMO, CONVERSATION, wallet_id)
    fields = {"wallet_id": wallet_id, **credentials_for("bitfinex", "valid")}
    reference = submit_credentials(_uow(desk), form["token"], user_id=None, fields=fields).reference
    with pytest.raises(services.DiagnosisNotPassed):
        await desk.update_confirmed_key(CHANNEL, DEMO, CONVERSATION, wallet_id, reference, list(Item))
