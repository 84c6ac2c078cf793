"""Purging pending credentials nobody will use: expired, or rejected by their live test (issue 15, item 9).

A key entered in the intake form waits as a `pending` credential, encrypted, for its live test and swap
(`bot.store.services.store_pending_credential`). Before this job only a later swap on the same wallet
retired the stale ones, so a rejected key — often a real, working key with the wrong permissions — stayed in
the database, encrypted, for ever. Purged rows are deleted outright (their diagnoses keep their outcome, with
`credential_id` set to NULL by the foreign key), so nothing of the secret is left.

- **expired**: past `expires_at` (`PENDING_TTL` after entry); `_pending` refuses them already.
- **rejected**: the latest live test failed on the key itself (a checklist item `fail`, the exchange
  answering). The conversation drops such a reference (`action_check_api_key`) and asks for a new form, so
  it will never be swapped in. A test that could not reach the exchange (`unavailable`) or left items
  `unknown` is no rejection: the user may test the same submission again.

`keymedic db purge-pending` runs it once and `bot.jobs.purge_pending` every ten minutes, both through
`run_purge_pending` (here, not in `bot.jobs`, so the command needs nothing above the store). Both are
idempotent: a second pass finds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, select

from bot.config import load_settings
from bot.store import orm
from bot.store.model import CredentialStatus, utcnow
from bot.store.repository import _rowcount
from bot.store.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWorkFactory

__all__ = ["PurgeReport", "purge_pending_credentials", "rejected", "run_purge_pending"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeReport:
    expired: int
    rejected: int

    def to_dict(self) -> dict[str, int]:
        return {"expired": self.expired, "rejected": self.rejected}


def rejected(outcome: dict[str, Any]) -> bool:
    """Whether a recorded diagnosis (`Diagnosis.to_dict()`) is a verdict against the key."""
    if outcome.get("all_passed") or outcome.get("unavailable"):
        return False
    return any(item.get("status") == "fail" for item in outcome.get("items") or [])


def purge_pending_credentials(uow: SqlAlchemyUnitOfWork, *, now: datetime | None = None) -> PurgeReport:
    """Delete expired and rejected pending credentials. Commits; returns how many of each went."""
    now = now or utcnow()
    c, d = orm.credentials, orm.diagnoses
    pending = CredentialStatus.PENDING
    with uow:
        expired = _rowcount(
            uow.session.execute(
                delete(c).where(c.c.status == pending, c.c.expires_at.is_not(None), c.c.expires_at <= now)
            )
        )
        # The newest test of each pending credential, decided in Python: the outcome is JSON, whose
        # queries differ between SQLite and PostgreSQL, and pending credentials are few (they expire).
        latest: dict[int, dict[str, Any]] = {}
        rows = uow.session.execute(
            select(d.c.credential_id, d.c.outcome, d.c.all_passed)
            .join(c, c.c.id == d.c.credential_id)
            .where(c.c.status == pending)
            .order_by(d.c.credential_id, d.c.created_at, d.c.id)
        )
        for credential_id, outcome, all_passed in rows:
            latest[credential_id] = {**dict(outcome or {}), "all_passed": bool(all_passed)}
        doomed = [credential_id for credential_id, outcome in latest.items() if rejected(outcome)]
        count = 0
        if doomed:
            # Re-checked in the statement: a test that passed meanwhile (a retry of the same submission)
            # keeps its credential for the swap.
            passed = exists().where(and_(d.c.credential_id == c.c.id, d.c.all_passed.is_(True)))
            count = _rowcount(
                uow.session.execute(delete(c).where(c.c.id.in_(doomed), c.c.status == pending, ~passed))
            )
        uow.commit()
    return PurgeReport(expired=expired, rejected=count)


def run_purge_pending() -> dict[str, Any]:
    """Delete expired and rejected pending credentials, with the process's settings."""
    factory = UnitOfWorkFactory(load_settings())
    try:
        report = purge_pending_credentials(factory())
    finally:
        factory.database.dispose()
    if report.expired or report.rejected:
        log.info("purged pending credentials: expired=%d rejected=%d", report.expired, report.rejected)
    return report.to_dict()
