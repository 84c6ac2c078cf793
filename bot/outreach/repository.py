"""The `outreach` table: one row per wallet and UTC day, claimed and settled with compare-and-sets.

The once-a-day rule is the table's unique constraint on (wallet_id, day): `reserve` is an
`INSERT … ON CONFLICT DO NOTHING`, so two jobs racing for one wallet (two workers, a retried job, two failed
syncs in a row) never both get a row, on SQLite or PostgreSQL, whatever they read before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, cast

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from bot.store import orm

__all__ = [
    "OutreachRecord",
    "OutreachRepository",
    "PENDING",
    "SENDING",
    "SENT",
    "SKIPPED",
    "MAX_DETAIL_CHARS",
]

PENDING: Final = "pending"
SENDING: Final = "sending"
SENT: Final = "sent"
SKIPPED: Final = "skipped"
MAX_DETAIL_CHARS: Final = 300


@dataclass(frozen=True)
class OutreachRecord:
    id: int
    wallet_id: int
    day: date
    user_id: int
    sync_run_id: int | None
    exchange: str
    raw_code: str | None
    status: str
    attempts: int
    lease_until: datetime | None
    conversation_id: str | None
    detail: str | None
    created_at: datetime
    sent_at: datetime | None


def _record(row: Any) -> OutreachRecord:
    return OutreachRecord(**{column.name: row._mapping[column.name] for column in orm.outreach.columns})


class OutreachRepository:
    """Queries on `outreach` (and the user's conversations) inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def reserve(
        self,
        *,
        wallet_id: int,
        day: date,
        user_id: int,
        sync_run_id: int,
        exchange: str,
        raw_code: str | None,
        now: datetime,
    ) -> bool:
        """Take the wallet's outreach for `day` (status pending); False when the day's row exists already."""
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            insert: Any = postgresql.insert(orm.outreach)
        elif dialect == "sqlite":
            insert = sqlite.insert(orm.outreach)
        else:
            raise NotImplementedError(f"no upsert for {dialect}")
        statement = insert.values(
            wallet_id=wallet_id,
            day=day,
            user_id=user_id,
            sync_run_id=sync_run_id,
            exchange=exchange,
            raw_code=raw_code[:100] if raw_code else None,
            status=PENDING,
            attempts=0,
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["wallet_id", "day"])
        result = self.session.execute(statement)
        return int(cast(CursorResult, result).rowcount) == 1

    def for_day(self, wallet_id: int, day: date) -> OutreachRecord | None:
        o = orm.outreach
        row = self.session.execute(select(o).where(o.c.wallet_id == wallet_id, o.c.day == day)).first()
        return _record(row) if row is not None else None

    def for_wallet(self, wallet_id: int) -> list[OutreachRecord]:
        o = orm.outreach
        rows = self.session.execute(select(o).where(o.c.wallet_id == wallet_id).order_by(o.c.day, o.c.id))
        return [_record(row) for row in rows]

    def claim(self, outreach_id: int, *, now: datetime, lease_until: datetime) -> int | None:
        """Mark the row `sending` for this job until `lease_until`; returns the claim's attempt number, or
        None when it is sent, skipped, or being sent by a job whose lease has not lapsed."""
        o = orm.outreach
        claimable = or_(o.c.status == PENDING, and_(o.c.status == SENDING, o.c.lease_until < now))
        result = self.session.execute(
            update(o)
            .where(o.c.id == outreach_id, claimable)
            .values(status=SENDING, attempts=o.c.attempts + 1, lease_until=lease_until)
        )
        if int(cast(CursorResult, result).rowcount) != 1:
            return None
        return int(self.session.scalar(select(o.c.attempts).where(o.c.id == outreach_id)) or 0)

    def settle(
        self,
        outreach_id: int,
        *,
        attempt: int,
        status: str,
        now: datetime,
        conversation_id: str | None = None,
        detail: str | None = None,
    ) -> bool:
        """Record how the claim `attempt` ended (sent, skipped, or pending again after a failure). False when
        the claim was taken over meanwhile (its lease lapsed and another job claimed the row)."""
        if status not in (PENDING, SENT, SKIPPED):
            raise ValueError(f"cannot settle an outreach as {status!r}")
        o = orm.outreach
        values: dict[str, Any] = {
            "status": status,
            "lease_until": None,
            "detail": detail[:MAX_DETAIL_CHARS] if detail else None,
        }
        if conversation_id is not None:
            values["conversation_id"] = conversation_id
        if status == SENT:
            values["sent_at"] = now
        result = self.session.execute(
            update(o)
            .where(o.c.id == outreach_id, o.c.attempts == attempt, o.c.status == SENDING)
            .values(**values)
        )
        return int(cast(CursorResult, result).rowcount) == 1

    def conversations_of(self, user_id: int, channels: Sequence[str]) -> list[str]:
        """The user's conversation ids on `channels` (a channel identity's external id is the Rasa sender id
        on the REST and socket.io channels), newest link first."""
        c = orm.channel_identities
        query = (
            select(c.c.external_id)
            .where(c.c.user_id == user_id, c.c.channel.in_(list(channels)))
            .order_by(c.c.created_at.desc(), c.c.id.desc())
        )
        return [str(value) for value in self.session.scalars(query)]
