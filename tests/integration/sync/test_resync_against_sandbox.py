"""A resync of every exchange over real HTTP: `bot.jobs.run_resync` reads the wallet's history through the
registered adapter (`bot.sync.source.ADAPTERS`), signed by the exchange client, from the sandbox, into SQLite.

Twice, with the user's manual edits in between: the edits survive and nothing duplicates. A key revoked on
the exchange fails the sync, leaves the wallet exactly as it was and records why, in a form a hand-off can
recognise (`bot.types.history.key_rejection`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bot.jobs import run_resync
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for
from bot.sandbox.server import serve_in_thread
from bot.store import services
from bot.store.crypto import new_key_entry, parse_key_ring
from bot.store.db import Database, create_database
from bot.store.model import CredentialStatus, SyncStatus
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials
from bot.types.history import key_rejection
from tests.support.sync import snapshot

pytestmark = pytest.mark.integration

ENTRY = new_key_entry("resync")
HISTORY_SIZE = 40


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with serve_in_thread(history_size=HISTORY_SIZE) as url:
        yield url


@pytest.fixture
def database(
    sqlite_template: Path, tmp_path: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """A migrated SQLite copy that `run_resync` finds through the settings; every client on the sandbox."""
    path = tmp_path / "keymedic.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", url)
    monkeypatch.setenv("KEYMEDIC_ENCRYPTION_KEYS", ENTRY)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path / "var"))
    for exchange in SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{sandbox_url}/{exchange}")
    database = create_database(url)
    yield database
    database.dispose()


def sandbox_credentials(exchange: str, scenario: str) -> Credentials:
    return Credentials.from_mapping(credentials_for(exchange, scenario))


def connect(uow: SqlAlchemyUnitOfWork, exchange: str) -> services.CredentialUpdate:
    with uow:
        user_id = services.ensure_user(uow, f"trader-{exchange}").id
        uow.commit()
    assert user_id is not None
    return services.update_or_connect(
        uow,
        user_id=user_id,
        exchange=exchange,
        credentials=sandbox_credentials(exchange, "valid"),
        diagnosis_passed=True,
    )


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_resync_reads_the_history_twice_keeping_manual_edits_and_duplicating_nothing(
    database: Database, exchange: str
) -> None:
    uow = SqlAlchemyUnitOfWork(database, parse_key_ring(ENTRY))
    update = connect(uow, exchange)

    first = run_resync(update.sync_run_id)
    assert (first["ran"], first["status"], first["error"]) == (True, "succeeded", None)
    assert first["added"] >= HISTORY_SIZE and first["updated"] == first["unchanged"] == 0

    with uow:
        synced = uow.transactions.for_wallet(update.wallet_id)
        assert len(synced) == first["added"]
        assert len({tx.exchange_tx_id for tx in synced}) == len(synced)
        assert all(tx.exchange_tx_id and tx.kind and tx.asset and tx.raw for tx in synced)
        assert "trade" in {tx.kind for tx in synced}
        edited, noted = synced[0], synced[-1]
        assert edited.id is not None and noted.id is not None
        services.edit_transaction(uow, edited.id, category="gift_received", cost_basis=Decimal("1234.56"))
        services.edit_transaction(uow, noted.id, note="moved to cold storage")
        services.add_manual_transaction(
            uow,
            wallet_id=update.wallet_id,
            kind="deposit",
            asset="BTC",
            amount=Decimal("0.25"),
            occurred_at=datetime(2020, 5, 1, tzinfo=timezone.utc),
        )
        uow.commit()
    before = snapshot(uow, update.wallet_id)

    second = run_resync(services.request_sync(uow, update.wallet_id, reason="test"))
    assert (second["ran"], second["status"], second["added"]) == (True, "succeeded", 0)
    assert second["updated"] + second["unchanged"] == first["added"]
    after = snapshot(uow, update.wallet_id)
    assert len(after) == first["added"] + 1
    # Source fields may move only if the day changed between the two syncs (sandbox times are per day); the
    # user's edits never do.
    assert [(row[0], row[1], row[-1]) for row in after] == [(row[0], row[1], row[-1]) for row in before]
    if second["updated"] == 0:
        assert after == before
    with uow:
        assert uow.transactions.removal_impact(update.wallet_id).total == 4


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_a_revoked_key_fails_the_sync_and_leaves_the_wallet_as_it_was(
    database: Database, exchange: str
) -> None:
    uow = SqlAlchemyUnitOfWork(database, parse_key_ring(ENTRY))
    update = connect(uow, exchange)
    assert run_resync(update.sync_run_id)["status"] == "succeeded"
    with uow:
        wallet = uow.wallets.get(update.wallet_id)
        assert wallet is not None
        synced_at = wallet.last_synced_at
    before = snapshot(uow, update.wallet_id)

    # The user saved a key that the exchange has since revoked.
    revoked = services.replace_credential(
        uow, update.wallet_id, sandbox_credentials(exchange, "revoked"), diagnosis_passed=True
    )
    outcome = run_resync(revoked.sync_run_id)

    assert (outcome["ran"], outcome["status"]) == (True, "failed")
    assert snapshot(uow, update.wallet_id) == before
    with uow:
        run = uow.sync_runs.get(revoked.sync_run_id)
        assert run is not None and run.status is SyncStatus.FAILED and run.error == outcome["error"]
        error = run.error or ""
        rejected = key_rejection(error)
        assert rejected is not None and rejected[0] == exchange and rejected[1], error
        wallet = uow.wallets.get(update.wallet_id)
        assert wallet is not None and wallet.last_synced_at == synced_at
        # The key it replaced is kept until a new key has synced once (DESIGN §5).
        assert [c.id for c in uow.credentials.for_wallet(update.wallet_id, CredentialStatus.PREVIOUS)] == [
            update.credential_id
        ]
    secrets = credentials_for(exchange, "revoked")
    assert not any(value in error for key, value in secrets.items() if key != "api_key")
