"""Resync merges by exchange transaction id: source fields refresh, manual edits and manual transactions
survive, nothing duplicates, and a failed or interrupted sync leaves the wallet as it was."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

import bot.sync.runner as runner
from bot.secret import Secret
from bot.store import orm, services
from bot.store.model import CredentialStatus, SyncStatus, utcnow
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.sync import source as sync_source
from bot.sync.runner import sync_wallet
from bot.types.credentials import Credentials
from bot.types.history import HistoryError, SourceTransaction
from tests.support.sync import FakeHistorySource, fake_sources, generate_history, snapshot

pytestmark = pytest.mark.integration

CREDS = Credentials(api_key="SYNCKEY-0123456789-abcd", api_secret=Secret("sync-secret-Qw3rTy7uIoP9"))


def connect(uow: SqlAlchemyUnitOfWork) -> services.CredentialUpdate:
    with uow:
        user = services.ensure_user(uow, "syncer")
        user_id = user.id
        uow.commit()
    assert user_id is not None
    return services.update_or_connect(
        uow, user_id=user_id, exchange="kraken", credentials=CREDS, diagnosis_passed=True
    )


async def sync(
    uow: SqlAlchemyUnitOfWork, run_id: int, history: Iterable[SourceTransaction], **kw: Any
) -> Any:
    items = list(history)
    source = FakeHistorySource(items, page_size=kw.pop("page_size", 7), **kw)
    return await sync_wallet(uow, run_id, sources=fake_sources(source), batch_size=10)


def add_edits(uow: SqlAlchemyUnitOfWork, wallet_id: int) -> None:
    with uow:

        def tx_id(n: int) -> int:
            tx = uow.transactions.by_exchange_id(wallet_id, f"tx-{n:07d}")
            assert tx is not None and tx.id is not None
            return tx.id

        services.edit_transaction(uow, tx_id(1), category="gift_received", note="from grandma")
        services.edit_transaction(uow, tx_id(2), cost_basis=Decimal("1234.56"))
        services.edit_transaction(uow, tx_id(3), note="cold storage")
        manual = services.add_manual_transaction(
            uow, wallet_id=wallet_id, kind="deposit", asset="BTC", amount=Decimal("0.5"), occurred_at=utcnow()
        )
        assert manual.id is not None
        services.edit_transaction(uow, manual.id, category="airdrop")
        uow.commit()


def new_run(uow: SqlAlchemyUnitOfWork, wallet_id: int) -> int:
    return services.request_sync(uow, wallet_id, reason="test")


async def test_resync_keeps_every_manual_edit_across_repeated_syncs_and_changed_rows(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    first = connect(uow)
    outcome = await sync(uow, first.sync_run_id, generate_history(30))
    assert (outcome.status, outcome.added, outcome.updated, outcome.unchanged) == (
        SyncStatus.SUCCEEDED,
        30,
        0,
        0,
    )
    add_edits(uow, first.wallet_id)
    with uow:
        impact_before = uow.transactions.removal_impact(first.wallet_id)

    # Same history again: nothing changes.
    before = snapshot(uow, first.wallet_id)
    outcome = await sync(uow, new_run(uow, first.wallet_id), generate_history(30))
    assert (outcome.added, outcome.updated, outcome.unchanged) == (0, 0, 30)
    assert snapshot(uow, first.wallet_id) == before

    # The exchange corrected some rows and has 5 new ones; it repeats one id on two pages.
    changed = list(generate_history(35))
    changed[1] = dataclasses.replace(changed[1], amount=Decimal("9.99"), raw={"corrected": True})
    changed[2] = dataclasses.replace(changed[2], kind="trade", fee=Decimal("0.5"))
    changed.append(dataclasses.replace(changed[3]))
    outcome = await sync(uow, new_run(uow, first.wallet_id), changed)
    assert (outcome.added, outcome.updated, outcome.unchanged) == (5, 2, 28)

    with uow:
        assert uow.transactions.count(first.wallet_id) == 36  # 35 from the exchange + 1 manual
        tx1 = uow.transactions.by_exchange_id(first.wallet_id, "tx-0000001")
        assert tx1 is not None and tx1.amount == Decimal("9.99") and tx1.raw == '{"corrected":true}'
        edit1 = uow.transactions.edit_of(tx1.id)  # type: ignore[arg-type]
        assert edit1 is not None and (edit1.category, edit1.note) == ("gift_received", "from grandma")
        tx2 = uow.transactions.by_exchange_id(first.wallet_id, "tx-0000002")
        assert tx2 is not None and tx2.kind == "trade"
        edit2 = uow.transactions.edit_of(tx2.id)  # type: ignore[arg-type]
        assert edit2 is not None and edit2.cost_basis == Decimal("1234.56")
        assert uow.transactions.removal_impact(first.wallet_id) == impact_before
        manual = [tx for tx in uow.transactions.for_wallet(first.wallet_id) if tx.exchange_tx_id is None]
        assert len(manual) == 1 and manual[0].amount == Decimal("0.5")


async def test_a_sync_that_fails_halfway_leaves_the_wallet_as_it_was(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    await sync(uow, first.sync_run_id, generate_history(30))
    add_edits(uow, first.wallet_id)
    before = snapshot(uow, first.wallet_id)

    changed = [dataclasses.replace(tx, amount=tx.amount + 1) for tx in generate_history(60)]
    leak = HistoryError(f"upstream said: bad signature for key {CREDS.api_key} / {CREDS.api_secret.reveal()}")
    run_id = new_run(uow, first.wallet_id)
    outcome = await sync(uow, run_id, changed, fail_after_pages=5, error=leak)

    assert outcome.status is SyncStatus.FAILED
    assert snapshot(uow, first.wallet_id) == before
    with uow:
        run = uow.sync_runs.get(run_id)
        assert run is not None and run.status is SyncStatus.FAILED and run.finished_at is not None
        assert run.error is not None and run.error.startswith("HistoryError: upstream said: bad signature")
        assert CREDS.api_key not in run.error and CREDS.api_secret.reveal() not in run.error
        assert "****abcd" in run.error
        assert uow.session.scalar(select(func.count()).select_from(orm.sync_staged_transactions)) == 0

    # A later sync works normally.
    outcome = await sync(uow, new_run(uow, first.wallet_id), changed)
    assert (outcome.added, outcome.updated) == (30, 30)


async def test_a_killed_sync_changes_nothing_and_its_retry_applies_once(
    uow: SqlAlchemyUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = connect(uow)
    await sync(uow, first.sync_run_id, generate_history(20))
    add_edits(uow, first.wallet_id)
    before = snapshot(uow, first.wallet_id)
    run_id = new_run(uow, first.wallet_id)

    class Killed(BaseException):
        """Stands in for the process dying: nothing after it runs (no failure is recorded)."""

    killed = FakeHistorySource(list(generate_history(40, amount_bump=Decimal(1))), page_size=7)
    killed.fail_after_pages, killed.error = 3, Killed()  # type: ignore[assignment]
    with monkeypatch.context() as patch:
        patch.setattr(runner, "_fail", lambda *args, **kwargs: None)  # a dead process records nothing
        with pytest.raises(Killed):
            await sync_wallet(uow, run_id, sources=fake_sources(killed), batch_size=10)
    with uow:
        staged = uow.session.scalar(select(func.count()).select_from(orm.sync_staged_transactions))
        assert staged == 14  # pages 1-2 (7 rows each) reached the staging area before it died
    assert snapshot(uow, first.wallet_id) == before
    with uow:
        run = uow.sync_runs.get(run_id)
        assert run is not None and run.status is SyncStatus.RUNNING

    # A duplicate job while the first looks alive does nothing.
    again = await sync(uow, run_id, generate_history(40, amount_bump=Decimal(1)))
    assert not again.ran
    assert snapshot(uow, first.wallet_id) == before

    # Once its heartbeat is stale, the retry reclaims the run, discards the dead attempt's rows, applies once.
    later = utcnow() + timedelta(hours=1)
    source = FakeHistorySource(list(generate_history(40, amount_bump=Decimal(1))), page_size=7)
    outcome = await sync_wallet(uow, run_id, sources=fake_sources(source), batch_size=10, clock=lambda: later)
    assert outcome.ran and (outcome.added, outcome.updated, outcome.unchanged) == (20, 20, 0)
    with uow:
        assert uow.transactions.count(first.wallet_id) == 41
        run = uow.sync_runs.get(run_id)
        assert run is not None and run.status is SyncStatus.SUCCEEDED and run.attempt == 2
    final = await sync(uow, run_id, generate_history(40))
    assert not final.ran


async def test_the_replaced_credential_is_retired_only_after_the_new_one_synced(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    first = connect(uow)
    await sync(uow, first.sync_run_id, generate_history(5))
    new = Credentials(api_key="SYNCKEY-NEW-000000-wxyz", api_secret=Secret("sync-secret-new-AbCdEf12"))
    update = services.replace_credential(uow, first.wallet_id, new, True)

    failed = await sync(uow, update.sync_run_id, generate_history(5), fail_after_pages=0)
    assert failed.status is SyncStatus.FAILED
    with uow:
        assert [c.status for c in uow.credentials.for_wallet(first.wallet_id)] == [
            CredentialStatus.PREVIOUS,
            CredentialStatus.ACTIVE,
        ]

    outcome = await sync(uow, new_run(uow, first.wallet_id), generate_history(5))
    assert outcome.status is SyncStatus.SUCCEEDED
    with uow:
        assert [c.status for c in uow.credentials.for_wallet(first.wallet_id)] == [
            CredentialStatus.RETIRED,
            CredentialStatus.ACTIVE,
        ]
        wallet = uow.wallets.get(first.wallet_id)
        assert wallet is not None and wallet.last_synced_at is not None


async def test_the_source_gets_the_decrypted_active_credential(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    source = FakeHistorySource(list(generate_history(3)))
    await sync_wallet(uow, first.sync_run_id, sources=fake_sources(source))
    ((wallet, credentials),) = source.calls
    assert wallet.exchange == "kraken" and wallet.wallet_id == first.wallet_id
    assert credentials == CREDS


async def test_an_exchange_without_an_adapter_fails_the_run_with_a_reason(
    uow: SqlAlchemyUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sync_source.ADAPTERS, "kraken")  # Kraken has one now; play an exchange without
    first = connect(uow)
    outcome = await sync_wallet(uow, first.sync_run_id)
    assert outcome.status is SyncStatus.FAILED
    assert outcome.error == "NoHistorySource: KeyMedic cannot read kraken history yet"


async def test_request_sync_reuses_the_open_run_and_the_idempotency_key(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    assert services.request_sync(uow, first.wallet_id) == first.sync_run_id
    await sync(uow, first.sync_run_id, generate_history(2))
    run_a = services.request_sync(uow, first.wallet_id, idempotency_key="abc")
    assert services.request_sync(uow, first.wallet_id, idempotency_key="abc") == run_a
    assert run_a != first.sync_run_id
