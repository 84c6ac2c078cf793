"""Unit of work: one database transaction, rolled back unless the service commits (cosmicpython, chapter 6).

    with uow:
        wallet = uow.wallets.lock(wallet_id)
        ...
        uow.commit()

The unit of work also carries the key ring, because encryption at rest is part of how things are stored.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.store import orm
from bot.store.crypto import KeyRing
from bot.store.db import Database
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

__all__ = ["AbstractUnitOfWork", "SqlAlchemyUnitOfWork"]

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
