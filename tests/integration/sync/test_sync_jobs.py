"""The resync job: idempotent when run twice, queued through SqliteHuey and RedisHuey, lazy on import."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.crypto import new_key_entry, parse_key_ring
from bot.store.db import Database
from bot.store.model import SyncStatus
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.sync import source as sync_source
from tests.support.store import kraken_wallet
from tests.support.sync import FakeHistorySource, generate_history

pytestmark = pytest.mark.integration

ENTRY = new_key_entry("jobkey")


def history_source() -> FakeHistorySource:
    """Registered as the kraken adapter for these tests."""
    return FakeHistorySource(lambda: generate_history(25), page_size=10)


@pytest.fixture
def job_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from bot.jobs import huey

    var = tmp_path / "var"
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_ENCRYPTION_KEYS", ENTRY)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(var))
    monkeypatch.delenv("KEYMEDIC_JOBS_URL", raising=False)
    monkeypatch.setitem(sync_source.ADAPTERS, "kraken", f"{__name__}:history_source")
    huey.storage = None  # rebuilt from this test's settings on first use
    yield var
    huey.storage = None


def queued_run(database: Database) -> tuple[SqlAlchemyUnitOfWork, int, int]:
    uow = SqlAlchemyUnitOfWork(database, parse_key_ring(ENTRY))
    update = kraken_wallet(uow, "jobber", "JOBKEY-00000000-abcd", "job-secret-123456789")
    return uow, update.wallet_id, update.sync_run_id


def test_the_resync_job_applies_a_sync_once_when_run_twice(database: Database, job_env: Path) -> None:
    from bot.jobs import resync_wallet

    uow, wallet_id, run_id = queued_run(database)
    first = resync_wallet.call_local(run_id)
    second = resync_wallet.call_local(run_id)

    assert first["ran"] and first["status"] == "succeeded" and first["added"] == 25
    assert not second["ran"] and second["status"] == "succeeded"
    with uow:
        assert uow.transactions.count(wallet_id) == 25
        run = uow.sync_runs.get(run_id)
        assert run is not None and run.status is SyncStatus.SUCCEEDED and run.attempt == 1


def test_a_queued_job_runs_through_the_local_sqlite_queue(database: Database, job_env: Path) -> None:
    from huey.storage import SqliteStorage

    from bot.jobs import huey, resync_wallet

    _, _, run_id = queued_run(database)
    resync_wallet(run_id)
    resync_wallet(run_id)  # a duplicate enqueue
    assert isinstance(huey.storage, SqliteStorage)
    assert (job_env / "jobs.db").exists()
    results = [huey.execute(huey.dequeue()) for _ in range(2)]
    assert [r["ran"] for r in results] == [True, False]
    assert huey.dequeue() is None


def test_a_queued_job_runs_through_redis(
    database: Database, job_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huey.storage import RedisStorage

    from bot.jobs import huey, resync_wallet

    monkeypatch.setenv("KEYMEDIC_JOBS_URL", "redis://127.0.0.1:6379/15")
    _, _, run_id = queued_run(database)
    resync_wallet(run_id)
    assert isinstance(huey.storage, RedisStorage)
    task = huey.dequeue()
    assert task is not None and task.args == (run_id,)
    assert huey.execute(task)["status"] == "succeeded"
    huey.storage.flush_all()  # database 15 holds only this test's queue and results


def test_importing_the_jobs_module_connects_nowhere(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KEYMEDIC_VAR_DIR": str(tmp_path / "var"),
        "KEYMEDIC_JOBS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
    }
    code = "import bot.jobs, bot.cli; bot.cli._build_parser(); print(type(bot.jobs.huey._storage).__name__)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "NoneType"
    assert not (tmp_path / "var").exists()


def test_a_resync_whose_worker_was_killed_is_queued_again_and_applied_once(
    database: Database, job_env: Path
) -> None:
    from datetime import timedelta

    from bot.jobs import huey, resync_wallet, run_recover_syncs
    from bot.store.model import utcnow
    from bot.sync.runner import STALE_AFTER

    uow, wallet_id, killed_run = queued_run(database)
    resync_wallet(killed_run)
    # A worker took the job off the queue (Huey has no acknowledgement), claimed the run and was killed:
    # the queue is empty and the run is `running` with a heartbeat that stopped 11 minutes ago.
    assert huey.dequeue() is not None and huey.dequeue() is None
    long_ago = utcnow() - STALE_AFTER - timedelta(minutes=1)
    with uow:
        assert uow.sync_runs.claim(killed_run, now=long_ago, stale_before=long_ago) == 1
        uow.commit()
    assert run_recover_syncs() == {"requeued": [killed_run]}
    results = [huey.execute(task) for task in iter(huey.dequeue, None)]
    assert [(r["ran"], r["status"]) for r in results] == [(True, "succeeded")]
    # Applied once, by the second attempt; nothing is left to recover, and a duplicate does nothing.
    with uow:
        assert uow.transactions.count(wallet_id) == 25
        run = uow.sync_runs.get(killed_run)
        assert run is not None and run.status is SyncStatus.SUCCEEDED and run.attempt == 2
    assert run_recover_syncs() == {"requeued": []}
    assert not resync_wallet.call_local(killed_run)["ran"]


def test_a_running_resync_with_a_fresh_heartbeat_is_not_queued_again(
    database: Database, job_env: Path
) -> None:
    from bot.jobs import run_recover_syncs
    from bot.store.model import utcnow

    uow, _, run_id = queued_run(database)
    now = utcnow()
    with uow:
        assert uow.sync_runs.claim(run_id, now=now, stale_before=now) == 1
        uow.commit()
    # Another worker is running it right now: queued again, it would only be refused by the claim.
    assert run_recover_syncs() == {"requeued": []}


def test_a_queued_resync_is_queued_again_only_once_its_job_is_long_overdue(
    database: Database, job_env: Path
) -> None:
    from datetime import timedelta

    from bot.jobs import run_recover_syncs
    from bot.store import orm
    from bot.store.model import utcnow
    from bot.sync.runner import STALE_AFTER

    uow, _, run_id = queued_run(database)
    assert run_recover_syncs() == {"requeued": []}  # its job is still waiting in the queue
    with uow:
        uow.session.execute(
            orm.sync_runs.update()
            .where(orm.sync_runs.c.id == run_id)
            .values(created_at=utcnow() - STALE_AFTER - timedelta(minutes=1))
        )
        uow.commit()
    assert run_recover_syncs() == {"requeued": [run_id]}
