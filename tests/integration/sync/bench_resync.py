"""Resync benchmark: time and peak memory of a first sync and a resync (10% of rows changed) of N
transactions, on SQLite and PostgreSQL. Each case runs in its own process, so peak RSS is that case's.

    .venv/bin/python tests/integration/sync/bench_resync.py            # 10k and 100k on both backends
    .venv/bin/python tests/integration/sync/bench_resync.py 20000      # other sizes
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path


def one_case(backend: str, count: int) -> dict[str, object]:
    from bot.store import services
    from bot.store.crypto import new_key_entry, parse_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork
    from bot.sync.runner import sync_wallet
    from tests.support.store import (
        create_postgres_database,
        drop_postgres_database,
        kraken_wallet,
        migrated_sqlite,
    )
    from tests.support.sync import FakeHistorySource, fake_sources, generate_history

    tmp = tempfile.TemporaryDirectory()
    url = migrated_sqlite(Path(tmp.name) / "bench.db") if backend == "sqlite" else create_postgres_database()
    database = create_database(url)
    try:
        uow = SqlAlchemyUnitOfWork(database, parse_key_ring(new_key_entry("k1")))
        update = kraken_wallet(uow, "bench", "BENCH-KEY-0000-abcd", "bench-secret-00000")
        source = FakeHistorySource(lambda: generate_history(count), page_size=500)
        started = time.perf_counter()
        first = asyncio.run(sync_wallet(uow, update.sync_run_id, sources=fake_sources(source)))
        first_s = time.perf_counter() - started

        def changed() -> object:
            for tx in generate_history(count):
                n = int(tx.exchange_tx_id.rsplit("-", 1)[1])
                yield dataclasses.replace(tx, amount=tx.amount + Decimal(1)) if n % 10 == 0 else tx

        run_id = services.request_sync(uow, update.wallet_id)
        source = FakeHistorySource(changed, page_size=500)  # type: ignore[arg-type]
        started = time.perf_counter()
        second = asyncio.run(sync_wallet(uow, run_id, sources=fake_sources(source)))
        second_s = time.perf_counter() - started
    finally:
        database.dispose()
        if backend == "postgresql":
            drop_postgres_database(url)
        tmp.cleanup()
    return {
        "backend": backend,
        "transactions": count,
        "first_sync_s": round(first_s, 2),
        "first": [first.added, first.updated, first.unchanged],
        "resync_s": round(second_s, 2),
        "resync": [second.added, second.updated, second.unchanged],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        print(json.dumps(one_case(sys.argv[2], int(sys.argv[3]))))
        return
    sizes = [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000]
    env = {**os.environ, "SQLALCHEMY_WARN_20": "1"}
    for backend in ("sqlite", "postgresql"):
        for count in sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--case", backend, str(count)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            print(out.strip(), flush=True)


if __name__ == "__main__":
    main()
