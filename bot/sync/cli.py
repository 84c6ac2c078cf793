"""`keymedic sync WALLET`: resync one wallet now, in this process, with progress.

For an operator (a user says their wallet is behind; a key was fixed outside the chat): it queues a sync run
the same way the key update does (`bot.store.services.request_sync`; a run already queued or running for the
wallet is reused, never doubled) and runs it here with `bot.sync.runner.sync_wallet`, whose claim keeps a
worker from running it at the same time. Prints a live count of fetched transactions (plain lines when not on
a terminal) and one final line. Exit 0 when it synced, 1 when it failed, 2 when it could not run it.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `keymedic sync`."""
    parser.add_argument("wallet", type=int, metavar="WALLET", help="the wallet's id")


def run(args: argparse.Namespace) -> int:
    """Resync the wallet; the exit code says how it went."""
    import asyncio

    from bot.config import load_settings
    from bot.observability.logs import install_logging
    from bot.observability.progress import Progress
    from bot.store import services
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork
    from bot.sync.runner import sync_wallet

    install_logging("sync")
    settings = load_settings()
    database = create_database(settings.database_url)
    try:
        keys = load_key_ring(settings)
        uow = SqlAlchemyUnitOfWork(database, keys)
        with uow:
            wallet = uow.wallets.get(args.wallet)
            exchange = wallet.exchange if wallet is not None else None
        if exchange is None:
            print(f"keymedic sync: there is no wallet {args.wallet}", file=sys.stderr)
            return 2
        run_id = services.request_sync(SqlAlchemyUnitOfWork(database, keys), args.wallet, reason="operator")
        progress = Progress(f"sync wallet {args.wallet} ({exchange})", unit="transactions", stream=sys.stdout)
        outcome = asyncio.run(
            sync_wallet(SqlAlchemyUnitOfWork(database, keys), run_id, progress=progress.update)
        )
    finally:
        database.dispose()
    if not outcome.ran:
        progress.finish(f"sync run {run_id} is {outcome.status.value} in another worker; not run here")
        return 2
    if outcome.error is not None:
        progress.finish(f"failed (sync run {run_id}): {outcome.error}")
        return 1
    progress.finish(
        f"synced (sync run {run_id}): {outcome.added:,} added, {outcome.updated:,} updated, "
        f"{outcome.unchanged:,} unchanged"
    )
    return 0
