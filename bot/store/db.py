"""Engines and sessions, SQLAlchemy 2.0 style (`future=True`) on SQLAlchemy 1.4.

SQLite gets what a multi-process local run needs: foreign keys on (SQLite leaves them off), WAL (readers never
wait for the writer), a busy timeout (a writer waits for another instead of failing), and transactions that
begin the way the caller asks. pysqlite's own transaction handling begins lazily and cannot do
`BEGIN IMMEDIATE`, so it is switched off and SQLAlchemy's `begin` event emits the BEGIN (the recipe in
SQLAlchemy's SQLite dialect documentation, "Serializable isolation / Savepoints / Transactional DDL").
A write transaction begins IMMEDIATE: it takes SQLite's write lock at once, so two writers queue on the busy
timeout instead of both reading and then one failing to upgrade its lock ("database is locked").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

__all__ = ["Database", "create_database", "migration_connection", "sqlite_file_of"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept open per process (and as many again under a burst); SQLite has one writer at a time anyway.
SQLITE_POOL_SIZE = 5


def sqlite_file_of(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for other backends and in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")  # type: ignore[untyped-decorator]
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL is durable across crashes of the app
        cursor.close()

    @event.listens_for(engine, "begin")  # type: ignore[untyped-decorator]
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE"):
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


@dataclass(frozen=True)
class Database:
    """An engine and its session factories. `write_sessions` begin with the write lock on SQLite."""

    engine: Engine
    write_sessions: Callable[[], Session]
    read_sessions: Callable[[], Session]

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    def dispose(self) -> None:
        self.engine.dispose()


def create_database(url: str | URL, *, echo: bool = False) -> Database:
    """Build the engine for `url` (normally `load_settings().database_url`). Connects only when used."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file_of(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        timeout = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        if path is None:  # in memory: every connection would be another database, so no pool of them
            engine = create_engine(parsed, future=True, echo=echo, connect_args=timeout)
        else:
            # SQLAlchemy 1.4 gives a SQLite file `NullPool`: every session opened the file, ran the PRAGMAs
            # and closed it, and closing the last connection to a WAL database checkpoints the WAL into the
            # file and deletes it. Profiled under `make bench`, that close was about a fifth of the action
            # server's busy time on a key form's first turn (docs/bench.md, "Session 5"). A pool keeps a few
            # connections open; each is used by one thread at a time, so sqlite3's same-thread check is off.
            engine = create_engine(
                parsed,
                future=True,
                echo=echo,
                poolclass=QueuePool,
                pool_size=SQLITE_POOL_SIZE,
                max_overflow=SQLITE_POOL_SIZE,
                connect_args={**timeout, "check_same_thread": False},
            )
        _configure_sqlite(engine)
        write_engine: Engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    else:
        engine = create_engine(parsed, future=True, echo=echo, pool_pre_ping=True)
        write_engine = engine
    return Database(
        engine=engine,
        write_sessions=sessionmaker(bind=write_engine, future=True, expire_on_commit=False),
        read_sessions=sessionmaker(bind=engine, future=True, expire_on_commit=False),
    )


@contextmanager
def migration_connection(url: str | URL) -> Iterator[Connection]:
    """One connection for a migration run (either database's Alembic env.py): the SQLite file's folder made
    first, and no pool, since a migration is a one-off that must leave no connection open behind it."""
    path = sqlite_file_of(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=NullPool, future=True)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
