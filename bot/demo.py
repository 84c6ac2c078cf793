"""`keymedic seed-demo`: the demo user and wallets a local run starts with (README, "demo user").

The user `demo` is who the REST channel's sender id `demo` is (DESIGN §6). Its wallets use the exchange
sandbox's scenario keys (`bot/sandbox/scenarios.py`), so a live test of each behaves as its story says:

| wallet | key | story |
|---|---|---|
| kraken | `revoked` | stopped syncing ("invalid key"); 3 categories, 2 notes, 1 cost basis, 2 manual txs |
| coinbase | `valid` | healthy, synced |
| kucoin | `valid` (with passphrase) | healthy, synced |
| binance | `valid` | healthy, synced |

Seeding runs only on a database without users, so running it again changes nothing.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["DEMO_HANDLE", "REST_CHANNEL", "seed_demo", "prepare_database", "add_arguments", "run"]

DEMO_HANDLE: Final = "demo"
REST_CHANNEL: Final = "rest"  # Rasa's REST input channel; its sender id names the KeyMedic user
_START: Final = datetime(2024, 3, 1, tzinfo=timezone.utc)

# exchange -> (sandbox scenario, number of source transactions, last sync succeeded?)
_WALLETS: Final[dict[str, tuple[str, int, bool]]] = {
    "kraken": ("revoked", 40, False),
    "coinbase": ("valid", 25, True),
    "kucoin": ("valid", 15, True),
    "binance": ("valid", 10, True),
}


def seed_demo(uow: AbstractUnitOfWork) -> bool:
    """Load the demo data when the database has no users; returns whether it did."""
    from bot.diagnosis.model import Credentials
    from bot.sandbox.scenarios import credentials_for
    from bot.store import services
    from bot.store.model import Credential, CredentialStatus, SyncRun, SyncStatus, Wallet
    from bot.sync.runner import staging_row
    from bot.sync.testing import generate_history

    with uow:
        if uow.users.count() > 0:
            return False
        user = services.ensure_user(uow, DEMO_HANDLE, display_name="Demo User")
        services.link_identity(uow, user, channel=REST_CHANNEL, external_id=DEMO_HANDLE)
        assert user.id is not None
        for exchange, (scenario, count, healthy) in _WALLETS.items():
            wallet = Wallet(user_id=user.id, exchange=exchange, display_name=exchange.capitalize())
            uow.wallets.add(wallet)
            uow.flush()
            assert wallet.id is not None
            credentials = Credentials.from_mapping(credentials_for(exchange, scenario))
            sealed = services.seal_credential(uow, wallet, credentials, CredentialStatus.ACTIVE)
            assert isinstance(sealed, Credential)
            sealed.activated_at = _START
            uow.credentials.add(sealed)
            uow.flush()

            first = SyncRun(
                wallet_id=wallet.id,
                idempotency_key=f"demo:{exchange}:initial",
                reason="demo_seed",
                status=SyncStatus.RUNNING,
                credential_id=sealed.id,
            )
            uow.sync_runs.add(first)
            uow.flush()
            assert first.id is not None
            history = generate_history(count, prefix=f"{exchange}", start=_START)
            uow.transactions.stage(first.id, [staging_row(tx) for tx in history])
            counts = uow.transactions.apply_staged(first.id, wallet.id, _START + timedelta(days=30))
            uow.transactions.discard_staged(first.id)
            first.status, first.added = SyncStatus.SUCCEEDED, counts.added
            first.started_at = first.finished_at = _START + timedelta(days=30)
            wallet.last_synced_at = first.finished_at
            if not healthy:
                failed = SyncRun(
                    wallet_id=wallet.id,
                    idempotency_key=f"demo:{exchange}:failed",
                    reason="scheduled",
                    status=SyncStatus.FAILED,
                    credential_id=sealed.id,
                    started_at=_START + timedelta(days=60),
                    finished_at=_START + timedelta(days=60),
                    error="ExchangeAuthError: EAPI:Invalid key",
                )
                uow.sync_runs.add(failed)
        uow.flush()
        _add_kraken_edits(uow, user.id)
        _add_coinbase_note(uow, user.id)
        uow.commit()
    return True


def _add_kraken_edits(uow: AbstractUnitOfWork, user_id: int) -> None:
    from bot.store import services

    wallet = uow.wallets.find(user_id, "kraken", "default")
    assert wallet is not None and wallet.id is not None

    def tx_id(index: int) -> int:
        assert wallet is not None and wallet.id is not None
        tx = uow.transactions.by_exchange_id(wallet.id, f"kraken-{index:07d}")
        assert tx is not None and tx.id is not None
        return tx.id

    services.edit_transaction(uow, tx_id(1), category="gift_received", note="Birthday gift from my brother")
    services.edit_transaction(uow, tx_id(2), category="staking_income")
    services.edit_transaction(
        uow, tx_id(5), category="transfer_between_own_wallets", cost_basis=Decimal("2150.00")
    )
    services.edit_transaction(
        uow, tx_id(8), note="Lost the receipt; amount checked against my bank statement"
    )
    services.add_manual_transaction(
        uow, wallet_id=wallet.id, kind="deposit", asset="BTC", amount=Decimal("0.05"), occurred_at=_START
    )
    services.add_manual_transaction(
        uow,
        wallet_id=wallet.id,
        kind="withdrawal",
        asset="ETH",
        amount=Decimal("1.2"),
        occurred_at=_START + timedelta(days=3),
        fee=Decimal("0.002"),
    )


def _add_coinbase_note(uow: AbstractUnitOfWork, user_id: int) -> None:
    from bot.store import services

    wallet = uow.wallets.find(user_id, "coinbase", "default")
    assert wallet is not None and wallet.id is not None
    tx = uow.transactions.by_exchange_id(wallet.id, "coinbase-0000003")
    assert tx is not None and tx.id is not None
    services.edit_transaction(uow, tx.id, note="Paid for the conference ticket")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-migrate", action="store_true", help="do not run `db upgrade` first")


def prepare_database(settings: Settings | None = None, *, migrate_first: bool = True) -> bool:
    """Bring the configured database to the latest schema and load the demo when it has no users.

    Returns whether the demo was loaded (False when the database already had users).
    """
    from bot.config import load_settings
    from bot.store import migrate
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = settings or load_settings()
    if migrate_first:
        migrate.upgrade(settings.database_url)
    database = create_database(settings.database_url)
    try:
        return seed_demo(SqlAlchemyUnitOfWork(database, load_key_ring(settings)))
    finally:
        database.dispose()


def run(args: argparse.Namespace) -> int:
    seeded = prepare_database(migrate_first=not args.no_migrate)
    print(
        "seed-demo: loaded the demo user `demo`"
        if seeded
        else "seed-demo: the database has users; left as is"
    )
    return 0
