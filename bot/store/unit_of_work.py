"""Unit of work: one database transaction, rolled back unless the service commits (cosmicpython, chapter 6).

    with uow:
        wallet = uow.wallets.lock(wallet_id)
        ...
        uow.commit()

The unit of work also carries the key ring, because encryption at rest is part of how things are stored.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.store import orm
from bot.store.crypto import KeyRing, key_file_path, load_key_ring
from bot.store.db import Database, create_database
from bot.store.repository import (
    CredentialRepository,
    DiagnosisRepository,
    IntakeTokenRepository,
    OutboxRepository,
    SyncRunRepository,
    TicketRepository,
    TransactionRepository,
    UserRepository,
    WalletRepository,
)

__all__ = ["AbstractUnitOfWork", "SqlAlchemyUnitOfWork", "UnitOfWorkFactory", "shared_uow_factory"]

_U = TypeVar("_U", bound="AbstractUnitOfWork")


class AbstractUnitOfWork(abc.ABC):
    users: UserRepository
    wallets: WalletRepository
    credentials: CredentialRepository
    transactions: TransactionRepository
    sync_runs: SyncRunRepository
    tickets: TicketRepository
    outbox: OutboxRepository
    intake_tokens: IntakeTokenRepository
    diagnoses: DiagnosisRepository
    keys: KeyRing
    dialect: str

    def __enter__(self: _U) -> _U:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Rollback by default: whatever the service did not commit is undone, on error or not.
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...

    @abc.abstractmethod
    def flush(self) -> None:
        """Send pending changes now, inside the transaction (to order them against constraints)."""


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    """A unit of work on a `Database`. `write=False` gives a read transaction (no write lock on SQLite)."""

    def __init__(self, database: Database, keys: KeyRing, *, write: bool = True) -> None:
        orm.start_mappers()
        self._database = database
        self._factory: Callable[[], Session] = database.write_sessions if write else database.read_sessions
        self.keys = keys
        self.dialect = database.dialect
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `with uow:`")
        return self._session

    def __enter__(self) -> SqlAlchemyUnitOfWork:
        if self._session is not None:
            raise RuntimeError("this unit of work is already in use")
        session: Session = self._factory()
        self._session = session
        self.users = UserRepository(session)
        self.wallets = WalletRepository(session)
        self.credentials = CredentialRepository(session)
        self.transactions = TransactionRepository(session)
        self.sync_runs = SyncRunRepository(session)
        self.tickets = TicketRepository(session)
        self.outbox = OutboxRepository(session)
        self.intake_tokens = IntakeTokenRepository(session)
        self.diagnoses = DiagnosisRepository(session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            super().__exit__(exc_type, exc, traceback)
        finally:
            self.session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        self.session.flush()


class UnitOfWorkFactory:
    """Units of work on one engine and one key ring, for a long-lived process (the action server's desks).

    Building an engine per desk gave each its own connection pool, and reading the key ring per unit of work
    read and parsed the key file several times a turn. The ring is cached, but a local key file is read
    again whenever it changes (`keymedic rotate-keys --generate-key` replaces it while KeyMedic runs), so a
    rotation reaches a running process without a restart; keys from `KEYMEDIC_ENCRYPTION_KEYS` are fixed for
    the process's life anyway.
    """

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self._settings = settings
        self._database = database
        self._keys: KeyRing | None = None
        self._keys_stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()  # desks open units of work from worker threads

    @property
    def database(self) -> Database:
        with self._lock:
            if self._database is None:
                self._database = create_database(self._settings.database_url)
            return self._database

    def keys(self) -> KeyRing:
        """The key ring, read again only when the local key file changed."""
        with self._lock:
            if self._settings.encryption_keys:
                if self._keys is None:
                    self._keys = load_key_ring(self._settings)
                return self._keys
            path = key_file_path(self._settings)
            stamp = _file_stamp(path)
            if self._keys is None or stamp is None or stamp != self._keys_stamp:
                self._keys = load_key_ring(self._settings)  # creates the file when missing
                self._keys_stamp = _file_stamp(path)
            return self._keys

    def __call__(self, *, write: bool = True) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.database, self.keys(), write=write)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size)


_shared: dict[tuple[str, str, str], UnitOfWorkFactory] = {}
_shared_lock = threading.Lock()


def shared_uow_factory(settings: Settings) -> UnitOfWorkFactory:
    """The process's factory for these settings' database and keys: every desk shares its engine."""
    key = (settings.database_url, str(settings.var_dir), settings.encryption_keys or "")
    with _shared_lock:
        factory = _shared.get(key)
        if factory is None:
            factory = _shared[key] = UnitOfWorkFactory(settings)
        return factory
