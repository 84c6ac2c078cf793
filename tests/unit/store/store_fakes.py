"""In-memory fakes of the store's unit of work (cosmicpython's `FakeUnitOfWork`), for service tests."""

from __future__ import annotations

import os
from typing import Any

from bot.store import model
from bot.store.crypto import KeyRing
from bot.store.model import CredentialStatus, SyncStatus
from bot.store.unit_of_work import AbstractUnitOfWork


class _Table:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow
        self.rows: list[Any] = []

    def add(self, item: Any) -> None:
        self.uow.pending.append(item)

    def get(self, item_id: int) -> Any:
        return next((row for row in self.rows if row.id == item_id), None)

    def lock(self, item_id: int) -> Any:
        return self.get(item_id)


class FakeUsers(_Table):
    def by_handle(self, handle: str) -> model.User | None:
        return next((u for u in self.rows if isinstance(u, model.User) and u.handle == handle), None)

    def by_channel(self, channel: str, external_id: str) -> model.User | None:
        for row in self.rows:
            if isinstance(row, model.ChannelIdentity) and (row.channel, row.external_id) == (
                channel,
                external_id,
            ):
                return self.get(row.user_id)
        return None


class FakeWallets(_Table):
    def find(self, user_id: int, exchange: str, label: str) -> model.Wallet | None:
        return next(
            (w for w in self.rows if (w.user_id, w.exchange, w.account_label) == (user_id, exchange, label)),
            None,
        )

    def for_user(self, user_id: int) -> list[model.Wallet]:
        return [w for w in self.rows if w.user_id == user_id]


class FakeCredentials(_Table):
    def for_wallet(self, wallet_id: int, *statuses: CredentialStatus) -> list[model.Credential]:
        found = [c for c in self.rows if c.wallet_id == wallet_id and (not statuses or c.status in statuses)]
        return sorted(found, key=lambda c: c.version)

    def active(self, wallet_id: int) -> model.Credential | None:
        found = self.for_wallet(wallet_id, CredentialStatus.ACTIVE)
        return found[0] if found else None

    def next_version(self, wallet_id: int) -> int:
        return max((c.version for c in self.for_wallet(wallet_id)), default=0) + 1

    def by_reference_hash(self, reference_hash: str) -> model.Credential | None:
        return next((c for c in self.rows if c.reference_hash == reference_hash), None)


class FakeSyncRuns(_Table):
    def by_idempotency_key(self, key: str) -> model.SyncRun | None:
        return next((r for r in self.rows if r.idempotency_key == key), None)

    def open_for_wallet(self, wallet_id: int) -> model.SyncRun | None:
        return next(
            (
                r
                for r in self.rows
                if r.wallet_id == wallet_id and r.status in (SyncStatus.QUEUED, SyncStatus.RUNNING)
            ),
            None,
        )


class FakeUnitOfWork(AbstractUnitOfWork):
    def __init__(self) -> None:
        self.users = FakeUsers(self)  # type: ignore[assignment]
        self.wallets = FakeWallets(self)  # type: ignore[assignment]
        self.credentials = FakeCredentials(self)  # type: ignore[assignment]
        self.sync_runs = FakeSyncRuns(self)  # type: ignore[assignment]
        self.keys = KeyRing({"k1": os.urandom(32)}, current="k1")
        self.dialect = "fake"
        self.pending: list[Any] = []
        self.commits = 0
        self.rollbacks = 0
        self._next_id = 1

    def _table_for(self, item: Any) -> _Table:
        if isinstance(item, (model.User, model.ChannelIdentity)):
            return self.users  # type: ignore[return-value]
        if isinstance(item, model.Wallet):
            return self.wallets  # type: ignore[return-value]
        if isinstance(item, model.Credential):
            return self.credentials  # type: ignore[return-value]
        return self.sync_runs  # type: ignore[return-value]

    def flush(self) -> None:
        for item in self.pending:
            if item.id is None:
                item.id = self._next_id
                self._next_id += 1
            self._table_for(item).rows.append(item)
        self.pending.clear()
        actives: dict[int, int] = {}
        for credential in self.credentials.rows:  # type: ignore[attr-defined]
            if credential.status is CredentialStatus.ACTIVE:
                actives[credential.wallet_id] = actives.get(credential.wallet_id, 0) + 1
        assert all(n == 1 for n in actives.values()), "two active credentials on one wallet"

    def commit(self) -> None:
        self.flush()
        self.commits += 1

    def rollback(self) -> None:
        self.pending.clear()
        self.rollbacks += 1
