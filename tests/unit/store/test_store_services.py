"""Store services against the in-memory unit of work."""

from __future__ import annotations

import pytest

from bot.secret import Secret
from bot.store import services
from bot.store.model import CredentialStatus, Wallet
from bot.types.credentials import Credentials
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status
from tests.unit.store.store_fakes import FakeUnitOfWork

NEW = Credentials(api_key="NEWKEY-0000000000-wxyz", api_secret=Secret("a-new-secret-0123456789"))


def diagnosis(status: Status) -> Diagnosis:
    return Diagnosis(exchange="kraken", items=tuple(ItemOutcome(item, status) for item in Item))


def wallet_in(uow: FakeUnitOfWork) -> int:
    wallet = Wallet(user_id=7, exchange="kraken")
    uow.wallets.add(wallet)
    uow.flush()
    assert wallet.id is not None
    return wallet.id


def test_replace_credential_refuses_unless_the_diagnosis_passed() -> None:
    uow = FakeUnitOfWork()
    wallet_id = wallet_in(uow)
    with pytest.raises(services.DiagnosisNotPassed):
        services.replace_credential(uow, wallet_id, NEW, diagnosis(Status.FAIL))
    with pytest.raises(services.DiagnosisNotPassed):
        services.replace_credential(uow, wallet_id, NEW, diagnosis(Status.UNKNOWN))
    assert uow.commits == 0
    assert uow.credentials.for_wallet(wallet_id) == []


def test_replace_credential_commits_the_new_active_credential_and_a_queued_sync() -> None:
    uow = FakeUnitOfWork()
    wallet_id = wallet_in(uow)
    first = services.replace_credential(uow, wallet_id, NEW, diagnosis(Status.PASS))
    second = services.replace_credential(uow, wallet_id, NEW, True)

    assert uow.commits == 2
    assert (first.version, second.version) == (1, 2)
    assert second.api_key_masked == "****wxyz"
    assert [c.status for c in uow.credentials.for_wallet(wallet_id)] == [
        CredentialStatus.PREVIOUS,
        CredentialStatus.ACTIVE,
    ]
    assert uow.sync_runs.by_idempotency_key(f"credential:{second.credential_id}") is not None


def test_credentials_are_stored_encrypted_and_only_masked_in_clear() -> None:
    uow = FakeUnitOfWork()
    wallet_id = wallet_in(uow)
    services.replace_credential(uow, wallet_id, NEW, True)
    (stored,) = uow.credentials.for_wallet(wallet_id)
    assert stored.ciphertext is not None
    assert NEW.api_key.encode() not in stored.ciphertext
    assert NEW.api_secret.reveal().encode() not in stored.ciphertext
    assert stored.api_key_masked == "****wxyz"
    assert "a-new-secret" not in repr(stored)
    assert services.reveal_credentials(uow, wallet_id) == NEW


def test_pending_reference_is_opaque_and_consumed_by_the_swap() -> None:
    uow = FakeUnitOfWork()
    wallet_id = wallet_in(uow)
    reference = services.store_pending_credential(uow, wallet_id=wallet_id, credentials=NEW)
    assert reference.startswith("pc_") and NEW.api_key not in reference
    (pending,) = uow.credentials.for_wallet(wallet_id)
    assert pending.status is CredentialStatus.PENDING and pending.reference_hash != reference
    assert services.load_pending_credential(uow, reference, wallet_id=wallet_id) == NEW

    services.replace_credential(uow, wallet_id, reference, True)
    assert pending.status is CredentialStatus.ACTIVE and pending.reference_hash is None
    with pytest.raises(services.PendingCredentialInvalid):
        services.replace_credential(uow, wallet_id, reference, True)


def test_unknown_wallet_is_reported_without_commit() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(services.NotFound):
        services.replace_credential(uow, 404, NEW, True)
    assert uow.commits == 0 and uow.rollbacks == 1
