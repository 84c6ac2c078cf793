"""The purge of pending credentials nobody will use (`bot.store.purge`), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.secret import Secret
from bot.store import orm, services
from bot.store.model import CredentialStatus, utcnow
from bot.store.purge import purge_pending_credentials
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials

pytestmark = pytest.mark.integration

ACTIVE = Credentials(api_key="ACTIVE-aaaaaaaaaaaa-1111", api_secret=Secret("active-secret-Zq8v2LmN0pXr7sT1"))


def pending_key(n: int) -> Credentials:
    return Credentials(
        api_key=f"PENDING-{n:04d}-bbbbbbbbbbbb", api_secret=Secret(f"pending-secret-{n:04d}-Hk3w9Q")
    )


def outcome(*statuses: str, unavailable: bool = False) -> dict[str, object]:
    return {
        "exchange": "kraken",
        "items": [{"item": f"item{i}", "status": status} for i, status in enumerate(statuses)],
        "unavailable": {"kind": "timeout", "message": "slow"} if unavailable else None,
    }


def test_expired_and_rejected_pending_credentials_go_and_the_rest_stay(uow: SqlAlchemyUnitOfWork) -> None:
    now = utcnow()
    with uow:
        user = services.ensure_user(uow, "alice")
        uow.commit()
        assert user.id is not None
        user_id = user.id
    wallet_id = services.update_or_connect(
        uow, user_id=user_id, exchange="kraken", credentials=ACTIVE, diagnosis_passed=True
    ).wallet_id

    def submit(n: int, *, ago: timedelta = timedelta(0)) -> str:
        return services.store_pending_credential(
            uow, wallet_id=wallet_id, credentials=pending_key(n), now=now - ago
        )

    def tested(reference: str, result: dict[str, object], *, passed: bool = False) -> None:
        services.record_diagnosis(
            uow,
            wallet_id=wallet_id,
            exchange="kraken",
            all_passed=passed,
            outcome=result,
            reference=reference,
            now=now,
        )

    submit(1, ago=services.PENDING_TTL + timedelta(minutes=1))  # expired, never tested
    tested(submit(2), outcome("pass", "fail"))  # rejected: the exchange refused something about the key
    fresh = submit(3)  # just entered, not tested yet
    tested(submit(4), outcome("pass", "unknown", unavailable=True))  # the exchange did not answer: retry
    tested(submit(5), outcome("pass", "unknown"))  # left for the checklist
    retried = submit(6)
    tested(retried, outcome("pass", "fail"))
    tested(retried, outcome("pass", "pass"), passed=True)  # the latest test passed: kept for the swap

    report = purge_pending_credentials(uow, now=now)

    assert (report.expired, report.rejected) == (1, 1)
    with uow:
        left = uow.session.execute(
            select(orm.credentials.c.api_key_masked, orm.credentials.c.status).order_by(orm.credentials.c.id)
        ).all()
        kept_diagnoses = uow.session.execute(select(orm.diagnoses.c.credential_id)).scalars().all()
    assert [(masked, CredentialStatus(status)) for masked, status in left] == [
        ("****1111", CredentialStatus.ACTIVE),
        ("****bbbb", CredentialStatus.PENDING),  # 3
        ("****bbbb", CredentialStatus.PENDING),  # 4
        ("****bbbb", CredentialStatus.PENDING),  # 5
        ("****bbbb", CredentialStatus.PENDING),  # 6
    ]
    assert None in kept_diagnoses  # the rejected key's test is kept, without its credential
    assert services.load_pending_credential(uow, fresh, wallet_id=wallet_id).api_key == pending_key(3).api_key
    with uow:
        assert services.reveal_credentials(uow, wallet_id).api_key == ACTIVE.api_key

    again = purge_pending_credentials(uow, now=now)
    assert (again.expired, again.rejected) == (0, 0)  # idempotent


def test_the_command_and_the_worker_job_purge_the_configured_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uow: SqlAlchemyUnitOfWork
) -> None:
    from bot.cli import main
    from bot.jobs import huey, purge_pending

    # The worker's consumer schedules every registered periodic task.
    assert purge_pending.task_class in huey._registry._periodic_tasks

    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    with uow:
        user = services.ensure_user(uow, "bob")
        uow.commit()
        assert user.id is not None
        user_id = user.id
    wallet_id = services.update_or_connect(
        uow, user_id=user_id, exchange="kraken", credentials=ACTIVE, diagnosis_passed=True
    ).wallet_id
    services.store_pending_credential(
        uow, wallet_id=wallet_id, credentials=pending_key(1), now=utcnow() - 2 * services.PENDING_TTL
    )
    assert main(["db", "purge-pending"]) == 0
    assert purge_pending.call_local() == {"expired": 0, "rejected": 0}
    with uow:
        statuses = uow.session.execute(select(orm.credentials.c.status)).scalars().all()
    assert [CredentialStatus(s) for s in statuses] == [CredentialStatus.ACTIVE]
