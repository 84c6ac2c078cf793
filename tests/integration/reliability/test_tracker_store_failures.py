"""A turn is never silently lost: a failed tracker-store save is tried again within the turn, and when it
still fails the turn fails loudly, through Rasa's `FailSafeTrackerStore` too, instead of being answered from
memory and forgotten (issue 19). Real SQLite (a held write lock) and PostgreSQL (the server dropping the
store's connections, as a restart does)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.agent import Agent
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

from bot.observability.metrics import TURNS_NOT_SAVED
from bot.store.migrate import upgrade_tracker
from rasa_plugins import startup, tracker_store
from rasa_plugins.tracker_store import TrackerStoreUnavailable, WindowedSQLTrackerStore
from tests.support.tracker import load_domain, postgres_tracker_database, tracker_store_kwargs

pytestmark = pytest.mark.integration

SENDER = "reliability-user"


@pytest.fixture(scope="module")
def domain() -> Domain:
    return load_domain()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same retries, shorter: these tests hold a lock for longer than all of them.
    monkeypatch.setattr(tracker_store, "RETRY_PAUSES_S", (0.05, 0.1, 0.2))


@pytest.fixture(autouse=True)
def installed() -> None:
    # What `python -m rasa_plugins.run` does before Rasa starts: FailSafeTrackerStore passes errors through.
    startup.install()


def _sqlite_store(domain: Domain, path: Path) -> WindowedSQLTrackerStore:
    upgrade_tracker(f"sqlite:///{path}")  # as `keymedic run` does before Rasa starts
    return WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=str(path))


def _wrapped(store: WindowedSQLTrackerStore, domain: Domain) -> FailSafeTrackerStore:
    """The store as the Rasa server uses it: wrapped by Rasa's agent in its `FailSafeTrackerStore`."""
    wrapped = Agent._create_tracker_store(store, domain)
    assert isinstance(wrapped, FailSafeTrackerStore)
    return wrapped


_clock = itertools.count(1_700_000_000)


def _turn(i: int) -> list[Any]:
    return [
        UserUttered(f"message {i}", {"name": "greet", "confidence": 1.0}, timestamp=next(_clock)),
        BotUttered(f"reply {i}", timestamp=next(_clock)),
        ActionExecuted("action_listen", timestamp=next(_clock)),
    ]


def _texts(store: WindowedSQLTrackerStore) -> list[str]:
    full = asyncio.run(store.retrieve_full_tracker(SENDER))
    assert full is not None
    return [e.text for e in full.events if isinstance(e, UserUttered | BotUttered)]


class HeldLock:
    """Another writer on the SQLite file holding its write lock for `seconds` (or until released)."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.connection = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")
        self._timer = threading.Timer(seconds, self.release)
        self._timer.start()

    def release(self) -> None:
        self._timer.cancel()
        try:
            self.connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def test_a_save_meeting_a_short_lock_waits_and_stores_the_turn_once(domain: Domain, tmp_path: Path) -> None:
    path = tmp_path / "tracker.db"
    store = _sqlite_store(domain, path)
    wrapped = _wrapped(store, domain)

    async def go() -> None:
        tracker = await wrapped.get_or_create_tracker(SENDER)
        for event in _turn(1):
            tracker.update(event)
        lock = HeldLock(path, 1.0)  # shorter than the retries
        try:
            await wrapped.save(tracker)
        finally:
            lock.release()

    asyncio.run(go())
    assert _texts(store) == ["message 1", "reply 1"]


def test_a_save_failing_every_try_raises_through_rasas_failsafe_and_is_counted(
    domain: Domain, tmp_path: Path, fast_retries: None
) -> None:
    path = tmp_path / "tracker.db"
    store = _sqlite_store(domain, path)
    wrapped = _wrapped(store, domain)
    before = TURNS_NOT_SAVED._value.get()

    async def go() -> None:
        tracker = await wrapped.get_or_create_tracker(SENDER)
        for event in _turn(1):
            tracker.update(event)
        await wrapped.save(tracker)
        tracker = await wrapped.retrieve(SENDER)
        assert tracker is not None
        for event in _turn(2):
            tracker.update(event)
        lock = HeldLock(path, 30.0)
        try:
            with pytest.raises(TrackerStoreUnavailable):
                await wrapped.save(tracker)
            # No in-memory stand-in answers for the store meanwhile (Rasa's fallback would).
            with pytest.raises(TrackerStoreUnavailable):
                await store.save(tracker)
        finally:
            lock.release()
        # The turn the user is told to resend is not stored; the next save stores it whole, once.
        await wrapped.save(tracker)

    asyncio.run(go())
    assert TURNS_NOT_SAVED._value.get() == before + 2
    assert _texts(store) == ["message 1", "reply 1", "message 2", "reply 2"]


def test_other_conversations_keep_being_served_while_a_save_waits_for_a_lock(
    domain: Domain, tmp_path: Path
) -> None:
    path = tmp_path / "tracker.db"
    store = _sqlite_store(domain, path)
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def go() -> None:
        tracker = await store.get_or_create_tracker(SENDER)
        for event in _turn(1):
            tracker.update(event)
        lock = HeldLock(path, 2.5)
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        try:
            await store.save(tracker)
        finally:
            lock.release()
            stop.set()
            await ticking

    asyncio.run(go())
    # SQLite's own wait blocks the loop for at most its busy timeout; the retries' pauses do not.
    assert max(gaps) < tracker_store.SQLITE_BUSY_TIMEOUT_MS / 1000 + 0.2
    assert _texts(store) == ["message 1", "reply 1"]


@pytest.fixture
def postgres() -> Iterator[dict[str, Any]]:
    with postgres_tracker_database() as url:
        yield tracker_store_kwargs(url)


def _drop_connections(database: str) -> int:
    """What a PostgreSQL restart does to the store: every connection to its database is closed by the
    server (this test's own database only; the shared server keeps running for everyone else)."""
    admin = sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            ).fetchall()
    finally:
        admin.dispose()
    return len(rows)


def test_a_postgresql_restart_mid_conversation_loses_no_turn(
    domain: Domain, postgres: dict[str, Any]
) -> None:
    store = WindowedSQLTrackerStore(domain=domain, **postgres)
    wrapped = _wrapped(store, domain)

    async def go() -> None:
        tracker = await wrapped.get_or_create_tracker(SENDER)
        for i in range(1, 6):
            if i in (3, 5):
                assert _drop_connections(postgres["db"]) >= 1
            tracker = await wrapped.retrieve(SENDER) or tracker
            for event in _turn(i):
                tracker.update(event)
            if i == 4:
                _drop_connections(postgres["db"])  # between the turn's retrieve and its save
            await wrapped.save(tracker)

    try:
        asyncio.run(go())
        texts = _texts(store)
    finally:
        store.engine.dispose()
    assert texts == [text for i in range(1, 6) for text in (f"message {i}", f"reply {i}")]


def test_the_rasa_process_serves_the_count_of_turns_not_saved() -> None:
    import httpx

    from bot.launcher import free_port
    from rasa_plugins.run import serve_metrics

    assert serve_metrics(None) is None
    port = serve_metrics(str(free_port()))
    TURNS_NOT_SAVED.inc()
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    assert "keymedic_turns_not_saved_total" in body


def _start_at_once(domain: Domain, kwargs: dict[str, Any], replicas: int) -> list[BaseException]:
    """The errors of `replicas` stores made at once on one database, as a cluster's replicas start."""
    barrier = threading.Barrier(replicas)
    errors: list[BaseException] = []
    stores: list[WindowedSQLTrackerStore] = []

    def start() -> None:
        barrier.wait()
        try:
            stores.append(WindowedSQLTrackerStore(domain=domain, **kwargs))
        except BaseException as error:  # noqa: BLE001 - returned to the test
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.engine.dispose()
    return errors


def test_replicas_starting_at_once_on_a_new_database_all_start(domain: Domain) -> None:
    # The cluster's replicas race through Rasa's create_all after `keymedic cluster` migrated the tracker
    # database; when the store made its own table there, PostgreSQL answered the loser with a unique
    # violation on its catalogue, which stopped that replica (tests/e2e/test_cluster.py found it).
    for _ in range(3):
        with postgres_tracker_database() as url:
            assert _start_at_once(domain, tracker_store_kwargs(url), 4) == []
