"""`keymedic seed-demo`: the demo user and wallets a local run starts with (README, "demo user").

The user `demo` is who the REST channel's sender id `demo` is (DESIGN §6). Its wallets use the exchange
sandbox's scenario keys (`bot/sandbox/scenarios.py`), so a live test of each behaves as its story says:

| wallet | key | story |
|---|---|---|
| kraken | `revoked` | stopped syncing ("invalid key"); 3 categories, 2 notes, 1 cost basis, 2 manual txs |
| coinbase | `valid` | healthy, synced |
| kucoin | `valid` (with passphrase) | healthy, synced |
| binance | `valid` | healthy, synced |

Each wallet's transactions are the oldest of what the exchange sandbox serves for that exchange, read by
KeyMedic's own history reader (an in-process transport stands in for the sandbox's HTTP server): the same
exchange transaction ids a resync fetches, so a resync of a demo wallet merges into these rows instead of
adding a second copy of each.

Seeding runs only on a database without users, so running it again changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import httpx

    from bot.config import Settings
    from bot.store.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork
    from bot.types.history import SourceTransaction

__all__ = [
    "DEMO_HANDLE",
    "REST_CHANNEL",
    "IN_PROCESS_SANDBOX",
    "seed_demo",
    "sandbox_histories",
    "sandbox_transport",
    "prepare_database",
    "ensure_local_operator",
    "add_arguments",
    "run",
]

DEMO_HANDLE: Final = "demo"
REST_CHANNEL: Final = "rest"  # Rasa's REST input channel; its sender id names the KeyMedic user

# exchange -> (sandbox scenario, number of source transactions, last sync succeeded?)
_WALLETS: Final[dict[str, tuple[str, int, bool]]] = {
    "kraken": ("revoked", 40, False),
    "coinbase": ("valid", 25, True),
    "kucoin": ("valid", 15, True),
    "binance": ("valid", 10, True),
}


def seed_demo(uow: AbstractUnitOfWork, *, sandbox_history_size: int | None = None) -> bool:
    """Load the demo data when the database has no users; returns whether it did.

    `sandbox_history_size` is the number of rows the sandbox serves per exchange (default: the setting
    `KEYMEDIC_SANDBOX_HISTORY_SIZE`); with the sandbox's, a same-day resync finds every demo row unchanged.
    """
    from bot.config import load_settings
    from bot.sandbox.scenarios import credentials_for
    from bot.store import services
    from bot.store.model import Credential, CredentialStatus, SyncRun, SyncStatus, Wallet
    from bot.sync.runner import staging_row
    from bot.types.credentials import Credentials

    size = load_settings().sandbox_history_size if sandbox_history_size is None else sandbox_history_size
    # The sandbox dates its rows in the 80 days before today (bot/sandbox/_history.py), so the demo's own
    # dates follow today too: keys made before that history, the first sync after it, then the failure.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start, first_sync, failed_sync = today - timedelta(days=90), today - timedelta(days=1), today
    with uow:
        if uow.users.count() > 0:
            return False
        histories = sandbox_histories(
            {exchange: count for exchange, (_, count, _) in _WALLETS.items()}, history_size=size
        )
        user = services.ensure_user(uow, DEMO_HANDLE, display_name="Demo User")
        services.link_identity(uow, user, channel=REST_CHANNEL, external_id=DEMO_HANDLE)
        assert user.id is not None
        for exchange, (scenario, _, healthy) in _WALLETS.items():
            wallet = Wallet(user_id=user.id, exchange=exchange, display_name=exchange.capitalize())
            uow.wallets.add(wallet)
            uow.flush()
            assert wallet.id is not None
            credentials = Credentials.from_mapping(credentials_for(exchange, scenario))
            sealed = services.seal_credential(uow, wallet, credentials, CredentialStatus.ACTIVE)
            assert isinstance(sealed, Credential)
            sealed.activated_at = start
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
            uow.transactions.stage(first.id, [staging_row(tx) for tx in histories[exchange]])
            counts = uow.transactions.apply_staged(first.id, wallet.id, first_sync)
            uow.transactions.discard_staged(first.id)
            first.status, first.added = SyncStatus.SUCCEEDED, counts.added
            first.started_at = first.finished_at = first_sync
            wallet.last_synced_at = first.finished_at
            if not healthy:
                failed = SyncRun(
                    wallet_id=wallet.id,
                    idempotency_key=f"demo:{exchange}:failed",
                    reason="scheduled",
                    status=SyncStatus.FAILED,
                    credential_id=sealed.id,
                    started_at=failed_sync,
                    finished_at=failed_sync,
                    error="ExchangeAuthError: EAPI:Invalid key",
                )
                uow.sync_runs.add(failed)
        uow.flush()
        _add_kraken_edits(uow, user.id, histories["kraken"], start)
        _add_coinbase_note(uow, user.id, histories["coinbase"])
        uow.commit()
    return True


def sandbox_histories(counts: dict[str, int], *, history_size: int) -> dict[str, list[SourceTransaction]]:
    """The oldest `counts[exchange]` transactions of what the sandbox serves each exchange's `valid` key
    when it holds `history_size` rows, read by the exchange's own history reader."""

    async def read_all() -> dict[str, list[SourceTransaction]]:
        return {
            exchange: (await _read_sandbox_history(exchange, history_size))[:count]
            for exchange, count in counts.items()
        }

    # seed_demo is synchronous and may be called from inside a running event loop (async test fixtures),
    # where asyncio.run refuses to start: the reading gets a loop of its own on a worker thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, read_all()).result()


async def _read_sandbox_history(exchange: str, history_size: int) -> list[SourceTransaction]:
    import importlib

    import httpx

    from bot.exchanges._history import HistoryReader
    from bot.sandbox.scenarios import credentials_for
    from bot.sync.source import ADAPTERS
    from bot.types.credentials import Credentials
    from bot.types.history import WalletRef

    module_name, _, class_name = ADAPTERS[exchange].partition(":")
    reader_class = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(reader_class, HistoryReader)
    client = httpx.AsyncClient(transport=sandbox_transport(history_size=history_size))
    # The readers take a client and a base URL (their test seam).
    reader = reader_class(client=client, base_url=f"{IN_PROCESS_SANDBOX}/{exchange}")
    wallet = WalletRef(wallet_id=0, exchange=exchange, account_label="default")
    credentials = Credentials.from_mapping(credentials_for(exchange, "valid"))
    rows: list[SourceTransaction] = []
    try:
        async for page in reader.pages(wallet, credentials):
            rows.extend(page)
    finally:
        await client.aclose()
    unique = {tx.exchange_tx_id: tx for tx in rows}  # a page boundary may repeat a row; the merge keeps one
    return sorted(unique.values(), key=lambda tx: (tx.occurred_at, tx.exchange_tx_id))


# The base URL of `sandbox_transport`: `f"{IN_PROCESS_SANDBOX}/kraken"` is Kraken's, as on the real server.
IN_PROCESS_SANDBOX: Final = "http://sandbox.in-process"


def sandbox_transport(*, history_size: int | None = None) -> httpx.MockTransport:
    """The exchange sandbox without a socket: an httpx transport that answers each request the way the
    sandbox's HTTP server (bot/sandbox/server.py) does, signature checks and error codes included, under
    the same `/<exchange>` prefixes. Latencies are not played."""
    import httpx

    from bot.sandbox._common import SandboxRequest
    from bot.sandbox._history import DEFAULT_HISTORY_SIZE
    from bot.sandbox.server import build_sandboxes

    sandboxes = build_sandboxes(0.0, history_size=history_size or DEFAULT_HISTORY_SIZE)

    def answer(request: httpx.Request) -> httpx.Response:
        raw_path, _, raw_query = request.url.raw_path.decode("ascii").partition("?")
        exchange, _, rest = raw_path.lstrip("/").partition("/")
        sandbox = sandboxes.get(exchange)
        if sandbox is None:
            return httpx.Response(404, json={"error": "unknown exchange prefix"})
        reply = sandbox.handle(
            SandboxRequest(
                method=request.method,
                path="/" + rest,
                raw_query=raw_query,
                headers=dict(request.headers),
                body=request.read(),
                host=request.headers.get("host", ""),
            )
        )
        headers = {"Content-Type": reply.content_type, **dict(reply.headers)}
        return httpx.Response(reply.status, content=reply.body, headers=headers)

    return httpx.MockTransport(answer)


def _add_kraken_edits(
    uow: AbstractUnitOfWork, user_id: int, history: list[SourceTransaction], start: datetime
) -> None:
    from bot.store import services

    wallet = uow.wallets.find(user_id, "kraken", "default")
    assert wallet is not None and wallet.id is not None

    def tx_id(index: int) -> int:
        assert wallet is not None and wallet.id is not None
        tx = uow.transactions.by_exchange_id(wallet.id, history[index].exchange_tx_id)
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
        uow, wallet_id=wallet.id, kind="deposit", asset="BTC", amount=Decimal("0.05"), occurred_at=start
    )
    services.add_manual_transaction(
        uow,
        wallet_id=wallet.id,
        kind="withdrawal",
        asset="ETH",
        amount=Decimal("1.2"),
        occurred_at=start + timedelta(days=3),
        fee=Decimal("0.002"),
    )


def _add_coinbase_note(uow: AbstractUnitOfWork, user_id: int, history: list[SourceTransaction]) -> None:
    from bot.store import services

    wallet = uow.wallets.find(user_id, "coinbase", "default")
    assert wallet is not None and wallet.id is not None
    tx = uow.transactions.by_exchange_id(wallet.id, history[3].exchange_tx_id)
    assert tx is not None and tx.id is not None
    services.edit_transaction(uow, tx.id, note="Paid for the conference ticket")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-migrate", action="store_true", help="do not run `db upgrade` first")


def prepare_database(settings: Settings | None = None, *, migrate_first: bool = True) -> bool:
    """Bring the configured database and the tracker database to the latest schema and load the demo when
    the database has no users.

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
        # Before Rasa starts: the windowed tracker store needs its index and table (bot/store/migrate.py).
        migrate.upgrade_tracker(settings.tracker_store_url)
    database = create_database(settings.database_url)
    try:
        keys = load_key_ring(settings)
        seeded = seed_demo(
            SqlAlchemyUnitOfWork(database, keys), sandbox_history_size=settings.sandbox_history_size
        )
        ensure_local_operator(SqlAlchemyUnitOfWork(database, keys), settings)
        return seeded
    finally:
        database.dispose()


def ensure_local_operator(uow: SqlAlchemyUnitOfWork, settings: Settings) -> None:
    """The agent of whoever runs KeyMedic locally, `local-operator`, whose agent API credential is the one in
    var/keys/agent.token (README "Hand-off to a person"); made on the first run, re-asserted on every run."""
    from bot.launcher import local_agent_token
    from bot.store import agents

    agents.ensure_agent_credential(
        uow,
        email=agents.LOCAL_OPERATOR_EMAIL,
        name=agents.LOCAL_OPERATOR_NAME,
        kind=agents.HUMAN,
        token=local_agent_token(settings),
        label="local",
    )


def run(args: argparse.Namespace) -> int:
    seeded = prepare_database(migrate_first=not args.no_migrate)
    print(
        "seed-demo: loaded the demo user `demo`"
        if seeded
        else "seed-demo: the database has users; left as is"
    )
    return 0
