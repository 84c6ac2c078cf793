"""Credential updates in place, on SQLite and PostgreSQL: one wallet, one active credential, encrypted."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from bot.secret import Secret
from bot.store import orm, services
from bot.store.crypto import DecryptionError
from bot.store.db import sqlite_file_of
from bot.store.model import CredentialStatus, SyncStatus, utcnow
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials

pytestmark = pytest.mark.integration

OLD = Credentials(api_key="OLDKEY-aaaaaaaaaaaa-1111", api_secret=Secret("old-secret-Zq8v2LmN0pXr7sT1"))
NEW = Credentials(
    api_key="NEWKEY-bbbbbbbbbbbb-2222",
    api_secret=Secret("new-secret-Hk3w9QeR5tYu1iOp"),
    passphrase=Secret("new-passphrase-Vb6nM4cX"),
)


class FakeDiagnosis:
    def __init__(self, all_passed: bool) -> None:
        self.all_passed = all_passed


def connect(
    uow: SqlAlchemyUnitOfWork, handle: str = "alice", exchange: str = "kraken"
) -> services.CredentialUpdate:
    with uow:
        user = services.ensure_user(uow, handle)
        user_id = user.id
        uow.commit()
    assert user_id is not None
    return services.update_or_connect(
        uow, user_id=user_id, exchange=exchange, credentials=OLD, diagnosis_passed=True
    )


def statuses(uow: SqlAlchemyUnitOfWork, wallet_id: int) -> list[tuple[int, CredentialStatus]]:
    with uow:
        return [(c.version, c.status) for c in uow.credentials.for_wallet(wallet_id)]


def test_update_keeps_the_previous_credential_until_the_new_one_synced(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    update_ = services.replace_credential(uow, first.wallet_id, NEW, FakeDiagnosis(True))

    assert update_.wallet_id == first.wallet_id
    assert update_.api_key_masked == "****2222"
    assert statuses(uow, first.wallet_id) == [(1, CredentialStatus.PREVIOUS), (2, CredentialStatus.ACTIVE)]
    with uow:
        assert services.reveal_credentials(uow, first.wallet_id) == NEW
        run = uow.sync_runs.get(update_.sync_run_id)
        assert run is not None and run.status is SyncStatus.QUEUED
        assert run.idempotency_key == f"credential:{update_.credential_id}"
        assert len(uow.wallets.for_user(uow.wallets.get(first.wallet_id).user_id)) == 1  # type: ignore[union-attr]


def test_a_failed_diagnosis_changes_nothing(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    with pytest.raises(services.DiagnosisNotPassed):
        services.replace_credential(uow, first.wallet_id, NEW, FakeDiagnosis(False))
    with pytest.raises(services.DiagnosisNotPassed):
        services.replace_credential(uow, first.wallet_id, NEW, False)
    assert statuses(uow, first.wallet_id) == [(1, CredentialStatus.ACTIVE)]


def test_two_swaps_before_a_sync_keep_only_the_newest_fallback(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    services.replace_credential(uow, first.wallet_id, NEW, True)
    services.replace_credential(uow, first.wallet_id, OLD, True)
    assert statuses(uow, first.wallet_id) == [
        (1, CredentialStatus.RETIRED),
        (2, CredentialStatus.PREVIOUS),
        (3, CredentialStatus.ACTIVE),
    ]
    with uow:
        retired = uow.credentials.for_wallet(first.wallet_id, CredentialStatus.RETIRED)[0]
        assert retired.ciphertext is None and retired.key_id is None


def test_updating_the_same_account_again_never_adds_a_second_wallet(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    with uow:
        user = uow.users.by_handle("alice")
        assert user is not None and user.id is not None
        user_id = user.id
    second = services.update_or_connect(
        uow, user_id=user_id, exchange="kraken", credentials=NEW, diagnosis_passed=True
    )
    assert second.wallet_id == first.wallet_id
    with uow:
        assert len(uow.wallets.for_user(user_id)) == 1


def test_the_database_refuses_a_second_active_credential(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    services.replace_credential(uow, first.wallet_id, NEW, True)
    with uow:
        with pytest.raises(Exception, match="(?i)unique"):
            uow.session.execute(update(orm.credentials).values(status=CredentialStatus.ACTIVE))


def test_pending_credential_reference_is_opaque_single_use_and_bound_to_its_wallet(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    kraken = connect(uow, exchange="kraken")
    coinbase = connect(uow, exchange="coinbase")
    reference = services.store_pending_credential(
        uow, wallet_id=kraken.wallet_id, credentials=NEW, conversation_id="conv-1"
    )
    assert "NEWKEY" not in reference and "secret" not in reference

    assert services.load_pending_credential(uow, reference, wallet_id=kraken.wallet_id) == NEW
    with pytest.raises(services.PendingCredentialInvalid):
        services.load_pending_credential(uow, reference, wallet_id=coinbase.wallet_id)
    with pytest.raises(services.PendingCredentialInvalid):
        services.replace_credential(uow, coinbase.wallet_id, reference, True)

    update_ = services.replace_credential(uow, kraken.wallet_id, reference, True)
    assert update_.version == 2
    assert statuses(uow, kraken.wallet_id) == [(1, CredentialStatus.PREVIOUS), (2, CredentialStatus.ACTIVE)]
    with pytest.raises(services.PendingCredentialInvalid):
        services.replace_credential(uow, kraken.wallet_id, reference, True)


def test_an_expired_pending_credential_cannot_be_used(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    reference = services.store_pending_credential(
        uow, wallet_id=first.wallet_id, credentials=NEW, ttl=timedelta(minutes=5)
    )
    later = utcnow() + timedelta(minutes=6)
    with pytest.raises(services.PendingCredentialInvalid):
        services.replace_credential(uow, first.wallet_id, reference, True, now=later)


def test_a_ciphertext_moved_to_another_wallet_fails_to_decrypt(uow: SqlAlchemyUnitOfWork) -> None:
    alice = connect(uow, handle="alice")
    bob = connect(uow, handle="bob")
    with uow:
        stolen = uow.credentials.active(alice.wallet_id)
        assert stolen is not None
        ciphertext, key_id = stolen.ciphertext, stolen.key_id
        target = uow.credentials.active(bob.wallet_id)
        assert target is not None
        target.ciphertext, target.key_id = ciphertext, key_id
        uow.commit()
    with uow, pytest.raises(DecryptionError):
        services.reveal_credentials(uow, bob.wallet_id)


def test_a_ciphertext_moved_to_another_version_fails_to_decrypt(uow: SqlAlchemyUnitOfWork) -> None:
    first = connect(uow)
    services.store_pending_credential(uow, wallet_id=first.wallet_id, credentials=NEW)
    with uow:
        active, pending = uow.credentials.for_wallet(first.wallet_id)
        active.ciphertext = pending.ciphertext
        uow.commit()
    with uow, pytest.raises(DecryptionError):
        services.reveal_credentials(uow, first.wallet_id)


SECRETS = [
    OLD.api_key,
    OLD.api_secret.reveal(),
    NEW.api_key,
    NEW.api_secret.reveal(),
    NEW.passphrase.reveal(),  # type: ignore[union-attr]
]


def test_no_secret_is_stored_in_clear(uow: SqlAlchemyUnitOfWork, database_url: str, tmp_path: Path) -> None:
    first = connect(uow)
    services.store_pending_credential(uow, wallet_id=first.wallet_id, credentials=NEW)
    services.replace_credential(uow, first.wallet_id, NEW, True)
    uow._database.dispose()  # close connections, so SQLite checkpoints its WAL into the file

    path = sqlite_file_of(database_url)
    if path is not None:
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        url = make_url(database_url)
        raw = subprocess.run(
            ["pg_dump", "--data-only", "-h", str(url.host), "-U", str(url.username), str(url.database)],
            check=True,
            capture_output=True,
        ).stdout
        assert b"COPY public.credentials" in raw
    for secret in SECRETS:
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw
    assert b"****2222" in raw  # the masked key is all that is kept in clear


def test_unit_of_work_rolls_back_uncommitted_work_by_default(uow: SqlAlchemyUnitOfWork) -> None:
    with uow:
        services.ensure_user(uow, "carol")
    with uow:
        assert uow.users.by_handle("carol") is None


def test_unit_of_work_rolls_back_on_error(uow: SqlAlchemyUnitOfWork) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), uow:
        services.ensure_user(uow, "dave")
        raise Boom
    with uow:
        assert uow.users.by_handle("dave") is None


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(uow: SqlAlchemyUnitOfWork) -> None:
    if uow.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    with uow:
        assert uow.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert uow.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert int(uow.session.execute(text("PRAGMA busy_timeout")).scalar() or 0) >= 5000
        with pytest.raises(Exception, match="(?i)foreign key"):
            uow.session.execute(
                orm.wallets.insert().values(
                    user_id=999, exchange="kraken", account_label="x", display_name="", created_at=utcnow()
                )
            )


def test_channel_identity_names_the_user(uow: SqlAlchemyUnitOfWork) -> None:
    with uow:
        user = services.ensure_user(uow, "erin")
        services.link_identity(uow, user, channel="slack", external_id="U123")
        services.link_identity(uow, user, channel="slack", external_id="U123")
        uow.commit()
    with uow:
        found = services.user_for_channel(uow, "slack", "U123")
        assert found is not None and found.handle == "erin"
        assert services.user_for_channel(uow, "slack", "U999") is None
        count = uow.session.scalar(
            select(orm.channel_identities.c.id).where(orm.channel_identities.c.external_id == "U123")
        )
        assert count is not None
