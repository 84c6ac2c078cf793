"""`resync` (issue 4): time and peak memory of resyncing a large wallet that carries manual edits.

For each backend (SQLite, PostgreSQL) and each of two sizes (default 10,000 and 100,000 transactions;
`--quick` 1,000 and 10,000; `KEYMEDIC_BENCH_RESYNC_SIZES=SMALL,LARGE` overrides), one case:

1. the parent makes a throw-away database migrated with `alembic upgrade head` (tests.support.store: a SQLite
   file in a temporary directory, or a PostgreSQL database with a random name) and a throw-away encryption
   key, and drops the database afterwards, whatever happens;
2. a first child process (`python -m scripts.bench.measurements.resync --setup N`; the URL and key in its
   environment, never argv) builds the wallet: a first sync of the whole history through the real runner,
   then manual edits on every 20th transaction (5 %: 5,000 of 100,000; category, note and cost basis in turn);
3. a second, fresh child (`--resync N …`, so its memory is the resync's alone and no heap is left over from
   the first sync) times one resync of the same history with every 10th transaction's amount changed at the
   exchange, through the real runner (`bot.sync.runner.sync_wallet`: claim, stage in batches of 2,000, merge
   in one transaction). The history comes from `tests.support.sync.FakeHistorySource` over
   `generate_history`, lazily, 500 rows a page: no HTTP (the adapters against the sandbox are measured
   elsewhere), but generating the rows is inside the timed resync, as reading pages would be;
4. that child checks the outcome (succeeded; 0 added, 10 % updated, the rest unchanged) and that the
   wallet's removal impact (its edits) is the same before and after.

Memory is the resync child's **VmHWM delta**: the kernel's high-water mark of resident memory during the
resync (reset to the current resident size just before it by writing 5 to `/proc/self/clear_refs`) minus the
resident size just before it. It counts every allocation of the process (Python objects, SQLAlchemy, the
sqlite3 and psycopg2 C libraries), not only Python's (which `tracemalloc` would see, at several times the
run time).

The cost per transaction is the resync's wall time / transactions; its ratio large / small should stay flat
(target ≤ 1.3): a resync whose cost per row grows with the wallet's size does not scale. At `--quick` sizes
the fixed cost of a run (a few commits, about 0.2 s on PostgreSQL) dominates the small case, so that ratio
only means something at the full sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from scripts.bench.figures import Figure
from scripts.bench.registry import BenchContext, measurement

__all__ = ["resync", "CaseResult", "parse_sizes", "read_status_kib", "edited", "changed_at_exchange"]

BACKENDS = ("sqlite", "postgresql")
DEFAULT_SIZES = (10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
SIZES_ENV = "KEYMEDIC_BENCH_RESYNC_SIZES"
URL_ENV = "KEYMEDIC_BENCH_RESYNC_DATABASE_URL"  # the throw-away database, parent -> children
KEYS_ENV = "KEYMEDIC_BENCH_RESYNC_KEYS"  # a throw-away key ring, parent -> children
EDIT_EVERY = 20  # 5 % of the transactions carry a manual edit
CHANGE_EVERY = 10  # 10 % changed at the exchange since the last sync
PAGE_SIZE = 500
TARGET_COST_RATIO = 1.3


def parse_sizes(text: str) -> tuple[int, int]:
    """`"10000,100000"` -> (10000, 100000): two positive sizes, the smaller first."""
    parts = [part.strip().replace("_", "") for part in text.split(",") if part.strip()]
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"{SIZES_ENV} is two positive sizes, SMALL,LARGE; got {text!r}")
    small, large = sorted(int(part) for part in parts)
    if small == large:
        raise ValueError(f"{SIZES_ENV} needs two different sizes; got {text!r}")
    return small, large


def read_status_kib(status_text: str, field: str) -> int:
    """A `kB` field (`VmRSS`, `VmHWM`) of a `/proc/<pid>/status` text, in KiB."""
    for line in status_text.splitlines():
        if line.startswith(f"{field}:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected unit in {line!r}")
            return int(value)
    raise KeyError(f"{field} not in the status text")


def edited(index: int) -> bool:
    """Whether the transaction at this position of the history carries a manual edit."""
    return index % EDIT_EVERY == 0


def changed_at_exchange(index: int) -> bool:
    """Whether the exchange changed this transaction since the first sync (the resync updates it)."""
    return index % CHANGE_EVERY == 0


@dataclass(frozen=True)
class CaseResult:
    """One resync, as the child reports it."""

    backend: str
    transactions: int
    edits: int
    resync_s: float
    peak_delta_mib: float
    first_sync_s: float
    updated: int

    @property
    def per_transaction_us(self) -> float:
        return self.resync_s / self.transactions * 1e6


# -- the children: setting up, then the resync, each in its own process ---------------------------------


def _status(field: str) -> int:
    return read_status_kib(Path("/proc/self/status").read_text(), field)


def _unit_of_work(database: Any) -> Any:
    from bot.store.crypto import parse_key_ring
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    # The parent's throw-away key ring: the setup child seals the credential, the resync child opens it.
    return SqlAlchemyUnitOfWork(database, parse_key_ring(os.environ[KEYS_ENV]))


def _setup(url: str, count: int) -> dict[str, Any]:
    """Child 1: the wallet — a first sync of the whole history, then the manual edits."""
    from sqlalchemy import insert, select

    from bot.store import orm
    from bot.store.db import create_database
    from bot.store.model import SyncStatus, utcnow
    from bot.sync.runner import sync_wallet
    from tests.support.store import kraken_wallet
    from tests.support.sync import FakeHistorySource, fake_sources, generate_history

    database = create_database(url)
    try:
        uow = _unit_of_work(database)
        update = kraken_wallet(uow, "bench", "BENCH-KEY-0000-abcd", "bench-secret-00000")
        started = time.perf_counter()
        first = asyncio.run(
            sync_wallet(
                uow,
                update.sync_run_id,
                sources=fake_sources(FakeHistorySource(lambda: generate_history(count), page_size=PAGE_SIZE)),
            )
        )
        first_sync_s = time.perf_counter() - started
        if first.status is not SyncStatus.SUCCEEDED or first.added != count:
            raise RuntimeError(f"the first sync did not load the wallet: {first.to_dict()}")

        # The user's manual edits, written in bulk (setting the wallet up is not what is measured).
        t, e = orm.transactions, orm.transaction_edits
        now = utcnow()
        with database.engine.begin() as connection:
            ids = connection.execute(
                select(t.c.id).where(t.c.wallet_id == update.wallet_id).order_by(t.c.exchange_tx_id)
            ).scalars()
            rows = [
                {
                    "transaction_id": tx_id,
                    "category": "gift" if n % 3 == 0 else None,
                    "note": f"bench note {n}" if n % 3 == 1 else None,
                    "cost_basis": Decimal("123.45") if n % 3 == 2 else None,
                    "edited_at": now,
                }
                for n, tx_id in enumerate(ids)
                if edited(n)
            ]
            connection.execute(insert(e), rows)
    finally:
        database.dispose()
    return {"wallet_id": update.wallet_id, "edits": len(rows), "first_sync_s": first_sync_s}


def _resync(url: str, count: int, wallet_id: int, edits: int, first_sync_s: float) -> dict[str, Any]:
    """Child 2, a fresh process: one resync through the real runner, timed, with its memory peak."""
    from bot.store import services
    from bot.store.db import create_database
    from bot.store.model import SyncStatus
    from bot.sync.runner import sync_wallet
    from bot.types.history import SourceTransaction
    from tests.support.sync import FakeHistorySource, fake_sources, generate_history

    def history() -> Iterator[SourceTransaction]:
        for n, tx in enumerate(generate_history(count)):
            yield dataclasses.replace(tx, amount=tx.amount + 1) if changed_at_exchange(n) else tx

    database = create_database(url)
    try:
        uow = _unit_of_work(database)
        before = services.removal_impact(uow, wallet_id)  # also connects and loads everything lazy
        run_id = services.request_sync(uow, wallet_id)
        source = FakeHistorySource(history, page_size=PAGE_SIZE)
        gc.collect()
        rss_before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the current resident size
        started = time.perf_counter()
        outcome = asyncio.run(sync_wallet(uow, run_id, sources=fake_sources(source)))
        resync_s = time.perf_counter() - started
        peak = _status("VmHWM")
        after = services.removal_impact(uow, wallet_id)
    finally:
        database.dispose()
    expected_updated = sum(1 for n in range(count) if changed_at_exchange(n))
    if (
        outcome.status is not SyncStatus.SUCCEEDED
        or (outcome.added, outcome.updated) != (0, expected_updated)
        or outcome.unchanged != count - expected_updated
    ):
        raise RuntimeError(f"the resync did not do what it should: {outcome.to_dict()}")
    if after != before or before.category_changes + before.notes + before.cost_basis_changes != edits:
        raise RuntimeError(f"the resync changed the manual edits: {before} -> {after}")
    return dataclasses.asdict(
        CaseResult(
            backend=database.dialect,
            transactions=count,
            edits=edits,
            resync_s=resync_s,
            peak_delta_mib=(peak - rss_before) / 1024,
            first_sync_s=first_sync_s,
            updated=outcome.updated,
        )
    )


# -- the parent: throw-away databases, the children, figures -------------------------------------------


def _child(args: list[str], env: dict[str, str], deadline: float, what: str) -> dict[str, Any]:
    timeout = deadline - time.monotonic()
    if timeout <= 0:
        raise TimeoutError(f"out of time before {what}")
    completed = subprocess.run(
        [sys.executable, "-m", __name__, *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{what} failed: {tail[0]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _case(backend: str, count: int, deadline: float) -> CaseResult:
    from bot.store.crypto import new_key_entry
    from tests.support.store import create_postgres_database, drop_postgres_database, migrated_sqlite

    with tempfile.TemporaryDirectory(prefix="keymedic-bench-resync-") as tmp:
        url = migrated_sqlite(Path(tmp) / "resync.db") if backend == "sqlite" else create_postgres_database()
        try:
            # In the environment, not argv: a database URL may hold a password (`ps` shows argv).
            env = {**os.environ, URL_ENV: url, KEYS_ENV: new_key_entry("bench")}
            wallet = _child(["--setup", str(count)], env, deadline, f"setting up {count:,} on {backend}")
            result = _child(
                ["--resync", str(count), json.dumps(wallet)],
                env,
                deadline,
                f"the {backend} resync of {count:,}",
            )
        finally:
            if backend == "postgresql":
                drop_postgres_database(url)
    return CaseResult(**result)


def _sizes(quick: bool) -> tuple[int, int]:
    override = os.environ.get(SIZES_ENV, "").strip()
    if override:
        return parse_sizes(override)
    return QUICK_SIZES if quick else DEFAULT_SIZES


def _figures(cases: dict[tuple[str, int], CaseResult], small: int, large: int) -> list[Figure]:
    figures: list[Figure] = []
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    for backend in BACKENDS:
        s, big = cases[(backend, small)], cases[(backend, large)]
        name = names[backend]
        figures += [
            Figure(f"{name}: resync of {small:,} ({s.edits:,} edited)", "s", s.resync_s),
            Figure(f"{name}: resync of {large:,} ({big.edits:,} edited)", "s", big.resync_s),
            Figure(f"{name}: per transaction at {small:,}", "µs", s.per_transaction_us),
            Figure(f"{name}: per transaction at {large:,}", "µs", big.per_transaction_us),
            Figure(
                f"{name}: per transaction {large:,} / {small:,}, target ≤ {TARGET_COST_RATIO}",
                "×",
                big.per_transaction_us / s.per_transaction_us,
            ),
            Figure(f"{name}: peak memory (VmHWM Δ), resync of {small:,}", "MiB", s.peak_delta_mib),
            Figure(f"{name}: peak memory (VmHWM Δ), resync of {large:,}", "MiB", big.peak_delta_mib),
            Figure(f"{name}: first sync of {large:,} (setup, for scale)", "s", big.first_sync_s),
        ]
    return figures


@measurement("resync")
def resync(context: BenchContext) -> list[Figure]:
    """A resync of a wallet with 5 % manually edited transactions, at two sizes, on SQLite and PostgreSQL."""
    small, large = _sizes(context.quick)
    deadline = time.monotonic() + context.budget_s
    cases = {
        (backend, count): _case(backend, count, deadline) for backend in BACKENDS for count in (small, large)
    }
    return _figures(cases, small, large)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A child of the bench's resync measurement (not for direct use)."
    )
    parser.add_argument("--setup", type=int, metavar="TRANSACTIONS")
    parser.add_argument("--resync", nargs=2, metavar=("TRANSACTIONS", "SETUP_JSON"))
    args = parser.parse_args(argv)
    url = os.environ[URL_ENV]
    if args.setup is not None:
        out = _setup(url, args.setup)
    elif args.resync is not None:
        wallet = json.loads(args.resync[1])
        out = _resync(url, int(args.resync[0]), wallet["wallet_id"], wallet["edits"], wallet["first_sync_s"])
    else:
        parser.error("--setup or --resync")
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
