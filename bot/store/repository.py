"""Repositories: the store's queries, one class per aggregate, each over the unit of work's session.

Bulk work (staging and applying a sync, counting what removal would delete) is set-based SQL on the tables,
never a query per row: a wallet can hold 100,000 transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from bot.store import model, orm
from bot.store.model import CredentialStatus, SyncStatus, TransactionOrigin

__all__ = [
    "UserRepository",
    "WalletRepository",
    "CredentialRepository",
    "TransactionRepository",
    "SyncRunRepository",
    "TicketRepository",
    "OutboxRepository",
    "IntakeTokenRepository",
    "SOURCE_COLUMNS",
    "ApplyCounts",
]

# The fields a sync owns on a transaction: refreshed from the exchange on every sync.
SOURCE_COLUMNS: tuple[str, ...] = ("kind", "asset", "amount", "fee", "fee_asset", "occurred_at", "raw")


def _upsert_insert(session: Session, table: Any) -> Any:
    """`INSERT … ON CONFLICT` for the session's backend (both dialects spell it the same way)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for {dialect}")


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult, result).rowcount)


class _Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, item: object) -> None:
        self.session.add(item)


class UserRepository(_Repository):
    def get(self, user_id: int) -> model.User | None:
        return self.session.get(model.User, user_id)

    def by_handle(self, handle: str) -> model.User | None:
        return self.session.scalars(select(model.User).where(orm.users.c.handle == handle)).first()

    def by_channel(self, channel: str, external_id: str) -> model.User | None:
        query = (
            select(model.User)
            .join(orm.channel_identities, orm.channel_identities.c.user_id == orm.users.c.id)
            .where(
                orm.channel_identities.c.channel == channel,
                orm.channel_identities.c.external_id == external_id,
            )
        )
        return self.session.scalars(query).first()

    def lock(self, user_id: int) -> model.User | None:
        """The user row, locked until the transaction ends (PostgreSQL; SQLite's write transaction already
        holds the database's write lock)."""
        query = select(model.User).where(orm.users.c.id == user_id).with_for_update()
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(orm.users)) or 0)


class WalletRepository(_Repository):
    def get(self, wallet_id: int) -> model.Wallet | None:
        return self.session.get(model.Wallet, wallet_id)

    def lock(self, wallet_id: int) -> model.Wallet | None:
        """The wallet row, locked until the transaction ends (see `UserRepository.lock`)."""
        query = select(model.Wallet).where(orm.wallets.c.id == wallet_id).with_for_update()
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    def find(self, user_id: int, exchange: str, account_label: str) -> model.Wallet | None:
        query = select(model.Wallet).where(
            orm.wallets.c.user_id == user_id,
            orm.wallets.c.exchange == exchange,
            orm.wallets.c.account_label == account_label,
        )
        return self.session.scalars(query).first()

    def for_user(self, user_id: int) -> list[model.Wallet]:
        query = select(model.Wallet).where(orm.wallets.c.user_id == user_id).order_by(orm.wallets.c.id)
        return list(self.session.scalars(query))

    def delete(self, wallet: model.Wallet) -> None:
        self.session.delete(wallet)


class CredentialRepository(_Repository):
    def get(self, credential_id: int) -> model.Credential | None:
        return self.session.get(model.Credential, credential_id)

    def for_wallet(self, wallet_id: int, *statuses: CredentialStatus) -> list[model.Credential]:
        query = select(model.Credential).where(orm.credentials.c.wallet_id == wallet_id)
        if statuses:
            query = query.where(orm.credentials.c.status.in_(statuses))
        return list(self.session.scalars(query.order_by(orm.credentials.c.version)))

    def active(self, wallet_id: int) -> model.Credential | None:
        found = self.for_wallet(wallet_id, CredentialStatus.ACTIVE)
        return found[0] if found else None

    def next_version(self, wallet_id: int) -> int:
        query = select(func.max(orm.credentials.c.version)).where(orm.credentials.c.wallet_id == wallet_id)
        return int(self.session.scalar(query) or 0) + 1

    def by_reference_hash(self, reference_hash: str) -> model.Credential | None:
        query = select(model.Credential).where(orm.credentials.c.reference_hash == reference_hash)
        return self.session.scalars(query).first()

    def ids_to_reseal(self, current_key_id: str, *, after_id: int, limit: int) -> list[int]:
        """Ids of credentials still sealed with another key than the current one, in id order."""
        c = orm.credentials
        query = (
            select(c.c.id)
            .where(c.c.id > after_id, c.c.ciphertext.is_not(None), c.c.key_id != current_key_id)
            .order_by(c.c.id)
            .limit(limit)
        )
        return [int(row) for row in self.session.scalars(query)]

    def lock_many(self, credential_ids: Sequence[int]) -> list[model.Credential]:
        query = (
            select(model.Credential)
            .where(orm.credentials.c.id.in_(credential_ids))
            .order_by(orm.credentials.c.id)
            .with_for_update()
        )
        return list(self.session.scalars(query.execution_options(populate_existing=True)))

    def count_by_key_id(self) -> dict[str, int]:
        c = orm.credentials
        query = select(c.c.key_id, func.count()).where(c.c.key_id.is_not(None)).group_by(c.c.key_id)
        return {str(kid): int(n) for kid, n in self.session.execute(query)}


class ApplyCounts:
    """How a sync changed a wallet's transactions."""

    __slots__ = ("added", "updated", "unchanged")

    def __init__(self, added: int, updated: int, unchanged: int) -> None:
        self.added, self.updated, self.unchanged = added, updated, unchanged


class TransactionRepository(_Repository):
    def get(self, transaction_id: int) -> model.Transaction | None:
        return self.session.get(model.Transaction, transaction_id)

    def by_exchange_id(self, wallet_id: int, exchange_tx_id: str) -> model.Transaction | None:
        t = orm.transactions
        query = select(model.Transaction).where(
            t.c.wallet_id == wallet_id, t.c.exchange_tx_id == exchange_tx_id
        )
        return self.session.scalars(query).first()

    def for_wallet(self, wallet_id: int) -> list[model.Transaction]:
        t = orm.transactions
        query = select(model.Transaction).where(t.c.wallet_id == wallet_id).order_by(t.c.occurred_at, t.c.id)
        return list(self.session.scalars(query))

    def count(self, wallet_id: int) -> int:
        t = orm.transactions
        return int(self.session.scalar(select(func.count()).where(t.c.wallet_id == wallet_id)) or 0)

    def edit_of(self, transaction_id: int) -> model.TransactionEdit | None:
        query = select(model.TransactionEdit).where(orm.transaction_edits.c.transaction_id == transaction_id)
        return self.session.scalars(query).first()

    def edits_for_wallet(self, wallet_id: int) -> list[tuple[model.Transaction, model.TransactionEdit]]:
        t, e = orm.transactions, orm.transaction_edits
        query = (
            select(model.Transaction, model.TransactionEdit)
            .join(e, e.c.transaction_id == t.c.id)
            .where(t.c.wallet_id == wallet_id)
            .order_by(t.c.id)
        )
        return [(row[0], row[1]) for row in self.session.execute(query)]

    # -- sync ---------------------------------------------------------------------------------------------

    def stage(self, sync_run_id: int, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add source transactions to a run's staging area (a later row with the same id wins)."""
        by_id: dict[str, dict[str, Any]] = {}
        for row in rows:
            by_id[str(row["exchange_tx_id"])] = {"sync_run_id": sync_run_id, **row}
        if not by_id:
            return 0
        s = orm.sync_staged_transactions
        # Delete-then-insert rather than ON CONFLICT DO UPDATE: psycopg2's fast multi-row VALUES path does not
        # apply to an upsert (SQLAlchemy's `_is_safe_for_fast_insert_values_helper`), which made staging
        # 100,000 rows about ten times slower on PostgreSQL.
        self.session.execute(
            delete(s).where(s.c.sync_run_id == sync_run_id, s.c.exchange_tx_id.in_(list(by_id)))
        )
        self.session.execute(insert(s), list(by_id.values()))
        return len(by_id)

    def discard_staged(self, sync_run_id: int) -> None:
        s = orm.sync_staged_transactions
        self.session.execute(delete(s).where(s.c.sync_run_id == sync_run_id))

    def apply_staged(self, sync_run_id: int, wallet_id: int, now: datetime) -> ApplyCounts:
        """Merge a run's staged rows into the wallet by exchange transaction id, in the caller's transaction.

        Source fields refresh; edits (their own table) and manual transactions (no exchange id) are not
        touched; a transaction already present is never inserted again.
        """
        s, t = orm.sync_staged_transactions, orm.transactions
        in_run = s.c.sync_run_id == sync_run_id
        same_tx = and_(t.c.wallet_id == wallet_id, t.c.exchange_tx_id == s.c.exchange_tx_id)
        staged = int(self.session.scalar(select(func.count()).select_from(s).where(in_run)) or 0)
        existing = int(
            self.session.scalar(select(func.count()).select_from(s.join(t, same_tx)).where(in_run)) or 0
        )
        changed: ColumnElement[Any] = or_(*(t.c[name].is_distinct_from(s.c[name]) for name in SOURCE_COLUMNS))
        updated = int(
            self.session.scalar(select(func.count()).select_from(s.join(t, same_tx)).where(in_run, changed))
            or 0
        )

        columns = ["wallet_id", "origin", "exchange_tx_id", *SOURCE_COLUMNS, "created_at", "updated_at"]
        source = select(
            literal(wallet_id),
            literal(TransactionOrigin.EXCHANGE.value),
            s.c.exchange_tx_id,
            *(s.c[name] for name in SOURCE_COLUMNS),
            literal(now, orm.UtcDateTime()),
            literal(now, orm.UtcDateTime()),
        ).where(in_run)
        stmt = _upsert_insert(self.session, t).from_select(columns, source)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.wallet_id, t.c.exchange_tx_id],
            set_={**{name: excluded[name] for name in SOURCE_COLUMNS}, "updated_at": excluded.updated_at},
            where=or_(*(t.c[name].is_distinct_from(excluded[name]) for name in SOURCE_COLUMNS)),
        )
        self.session.execute(stmt)
        return ApplyCounts(added=staged - existing, updated=updated, unchanged=existing - updated)

    # -- removal impact -----------------------------------------------------------------------------------

    def removal_impact(self, wallet_id: int) -> model.RemovalImpact:
        t, e = orm.transactions, orm.transaction_edits
        categories, notes, cost_bases = self.session.execute(
            select(func.count(e.c.category), func.count(e.c.note), func.count(e.c.cost_basis))
            .select_from(e.join(t, e.c.transaction_id == t.c.id))
            .where(t.c.wallet_id == wallet_id)
        ).one()
        manual = self.session.scalar(
            select(func.count()).where(t.c.wallet_id == wallet_id, t.c.origin == TransactionOrigin.MANUAL)
        )
        return model.RemovalImpact(
            category_changes=int(categories),
            notes=int(notes),
            cost_basis_changes=int(cost_bases),
            manual_transactions=int(manual or 0),
        )


class SyncRunRepository(_Repository):
    def get(self, sync_run_id: int) -> model.SyncRun | None:
        return self.session.get(model.SyncRun, sync_run_id, populate_existing=True)

    def by_idempotency_key(self, key: str) -> model.SyncRun | None:
        query = select(model.SyncRun).where(orm.sync_runs.c.idempotency_key == key)
        return self.session.scalars(query).first()

    def open_for_wallet(self, wallet_id: int) -> model.SyncRun | None:
        """The wallet's queued or running sync, if any."""
        r = orm.sync_runs
        query = (
            select(model.SyncRun)
            .where(r.c.wallet_id == wallet_id, r.c.status.in_([SyncStatus.QUEUED, SyncStatus.RUNNING]))
            .order_by(r.c.id.desc())
        )
        return self.session.scalars(query).first()

    def latest_for_wallet(self, wallet_id: int) -> model.SyncRun | None:
        r = orm.sync_runs
        query = select(model.SyncRun).where(r.c.wallet_id == wallet_id).order_by(r.c.id.desc())
        return self.session.scalars(query).first()

    def abandoned(self, *, queued_before: datetime, stale_before: datetime) -> list[int]:
        """Runs whose job may have died with a worker: queued since before `queued_before` (the job's queue
        message was taken and never run) or running with a heartbeat older than `stale_before`."""
        r = orm.sync_runs
        query = (
            select(r.c.id)
            .where(
                or_(
                    and_(r.c.status == SyncStatus.QUEUED, r.c.created_at < queued_before),
                    and_(r.c.status == SyncStatus.RUNNING, r.c.heartbeat_at < stale_before),
                )
            )
            .order_by(r.c.id)
        )
        return [int(i) for i in self.session.scalars(query)]

    def claim(self, sync_run_id: int, *, now: datetime, stale_before: datetime) -> int | None:
        """Mark a run running for this worker; returns the claim's attempt number, or None when the run is not
        claimable (finished, or running with a recent heartbeat). A compare-and-set, so two workers handed
        the same run cannot both claim it."""
        r = orm.sync_runs
        claimable = or_(
            r.c.status == SyncStatus.QUEUED,
            and_(r.c.status == SyncStatus.RUNNING, r.c.heartbeat_at < stale_before),
        )
        result = self.session.execute(
            update(r)
            .where(r.c.id == sync_run_id, claimable)
            .values(status=SyncStatus.RUNNING, attempt=r.c.attempt + 1, started_at=now, heartbeat_at=now)
        )
        if _rowcount(result) != 1:
            return None
        return int(self.session.scalar(select(r.c.attempt).where(r.c.id == sync_run_id)) or 0)

    def heartbeat(self, sync_run_id: int, attempt: int, now: datetime) -> bool:
        """Refresh a running claim; False when the claim was taken over or the run finished."""
        r = orm.sync_runs
        result = self.session.execute(
            update(r)
            .where(r.c.id == sync_run_id, r.c.attempt == attempt, r.c.status == SyncStatus.RUNNING)
            .values(heartbeat_at=now)
        )
        return _rowcount(result) == 1

    def lock(self, sync_run_id: int) -> model.SyncRun | None:
        query = select(model.SyncRun).where(orm.sync_runs.c.id == sync_run_id).with_for_update()
        return self.session.scalars(query.execution_options(populate_existing=True)).first()


class TicketRepository(_Repository):
    def get(self, ticket_id: int) -> model.Ticket | None:
        return self.session.get(model.Ticket, ticket_id)

    def by_conversation(self, conversation_id: str) -> model.Ticket | None:
        query = select(model.Ticket).where(orm.tickets.c.conversation_id == conversation_id)
        return self.session.scalars(query).first()

    def lock(self, ticket_id: int) -> model.Ticket | None:
        """The ticket row, locked until the transaction ends (see `UserRepository.lock`): two agents, or an
        agent and the bot, changing one ticket's payload queue up instead of losing one of the changes."""
        query = select(model.Ticket).where(orm.tickets.c.id == ticket_id).with_for_update()
        return self.session.scalars(query.execution_options(populate_existing=True)).first()


class OutboxRepository(_Repository):
    """The notification outbox. A row is `pending` (due at `next_attempt_at`), `sending` (claimed by a worker
    until `next_attempt_at`, its lease) or `delivered`. `attempts` counts claims and doubles as the claim's
    token: a worker settles only the claim it made."""

    def get(self, message_id: int) -> model.OutboxMessage | None:
        return self.session.get(model.OutboxMessage, message_id)

    def by_delivery_id(self, delivery_id: str) -> model.OutboxMessage | None:
        query = select(model.OutboxMessage).where(orm.outbox.c.delivery_id == delivery_id)
        return self.session.scalars(query).first()

    def for_ticket(self, ticket_id: int) -> list[model.OutboxMessage]:
        o = orm.outbox
        query = select(model.OutboxMessage).where(o.c.ticket_id == ticket_id).order_by(o.c.id)
        return list(self.session.scalars(query))

    def count_undelivered(self, reasons: Sequence[str]) -> int:
        o = orm.outbox
        query = select(func.count()).where(o.c.status != "delivered", o.c.reason.in_(list(reasons)))
        return int(self.session.scalar(query) or 0)

    def next_due(self, reasons: Sequence[str]) -> datetime | None:
        """When the earliest undelivered row falls due (a retry, or a lease that lapses), if any."""
        o = orm.outbox
        query = select(func.min(o.c.next_attempt_at)).where(
            o.c.status != "delivered", o.c.reason.in_(list(reasons))
        )
        moment = self.session.scalar(query)
        return moment if isinstance(moment, datetime) else None

    def claim_next(
        self, *, reasons: Sequence[str], now: datetime, lease_until: datetime
    ) -> model.OutboxMessage | None:
        """Claim the oldest due row with one of `reasons` for this worker until `lease_until`; None when
        nothing is due.

        On PostgreSQL the candidate is picked with `FOR UPDATE SKIP LOCKED`, so concurrent workers pick
        different rows without waiting on each other; SQLite's write transaction (BEGIN IMMEDIATE) already
        serialises them. The UPDATE repeats the "due" condition as a compare-and-set, so a row is never
        claimed twice for one lease whatever the isolation level. A row whose worker died while `sending`
        becomes due again when its lease lapses.
        """
        o = orm.outbox
        due = and_(
            o.c.status.in_(("pending", "sending")), o.c.next_attempt_at <= now, o.c.reason.in_(list(reasons))
        )
        candidate = self.session.scalar(
            select(o.c.id)
            .where(due)
            .order_by(o.c.next_attempt_at, o.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if candidate is None:
            return None
        result = self.session.execute(
            update(o)
            .where(o.c.id == candidate, due)
            .values(status="sending", attempts=o.c.attempts + 1, next_attempt_at=lease_until)
        )
        if _rowcount(result) != 1:
            return None
        query = select(model.OutboxMessage).where(o.c.id == candidate)
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    def settle_delivered(self, message_id: int, *, now: datetime) -> bool:
        """Record a delivery. Whichever worker's attempt succeeded, the row is delivered (once)."""
        o = orm.outbox
        result = self.session.execute(
            update(o)
            .where(o.c.id == message_id, o.c.status != "delivered")
            .values(status="delivered", delivered_at=now, last_error=None)
        )
        return _rowcount(result) == 1

    def settle_failed(self, message_id: int, *, attempt: int, retry_at: datetime, error: str) -> bool:
        """Record a failed attempt and when to try again; a no-op when this claim was taken over (its lease
        lapsed and another worker claimed the row) or the row was delivered meanwhile."""
        o = orm.outbox
        result = self.session.execute(
            update(o)
            .where(o.c.id == message_id, o.c.status == "sending", o.c.attempts == attempt)
            .values(status="pending", next_attempt_at=retry_at, last_error=error)
        )
        return _rowcount(result) == 1


class IntakeTokenRepository(_Repository):
    def by_hash(self, token_hash: str) -> model.IntakeToken | None:
        query = select(model.IntakeToken).where(orm.intake_tokens.c.token_hash == token_hash)
        return self.session.scalars(query).first()

    def claim(self, token_id: int, *, now: datetime) -> bool:
        """Mark an unused, unexpired token used. A compare-and-set, so two submissions racing with the same
        token cannot both redeem it; False when it was used, or lapsed, first."""
        t = orm.intake_tokens
        result = self.session.execute(
            update(t)
            .where(t.c.id == token_id, t.c.used_at.is_(None), t.c.expires_at > now)
            .values(used_at=now)
        )
        return _rowcount(result) == 1

    def release(self, token_id: int, *, claimed_at: datetime) -> bool:
        """Undo this caller's `claim` (the submission could not be stored, so the user may try again)."""
        t = orm.intake_tokens
        result = self.session.execute(
            update(t).where(t.c.id == token_id, t.c.used_at == claimed_at).values(used_at=None)
        )
        return _rowcount(result) == 1

    def delete_lapsed(self, before: datetime) -> int:
        """Forget tokens that expired before `before` (kept until then to tell "expired" from "unknown")."""
        t = orm.intake_tokens
        return _rowcount(self.session.execute(delete(t).where(t.c.expires_at < before)))


class DiagnosisRepository(_Repository):
    def latest_for_credential(self, credential_id: int) -> model.DiagnosisRecord | None:
        d = orm.diagnoses
        query = (
            select(model.DiagnosisRecord)
            .where(d.c.credential_id == credential_id)
            .order_by(d.c.created_at.desc(), d.c.id.desc())
        )
        return self.session.scalars(query).first()

    def latest_for_wallet(self, wallet_id: int) -> model.DiagnosisRecord | None:
        d = orm.diagnoses
        query = (
            select(model.DiagnosisRecord)
            .where(d.c.wallet_id == wallet_id)
            .order_by(d.c.created_at.desc(), d.c.id.desc())
        )
        return self.session.scalars(query).first()
