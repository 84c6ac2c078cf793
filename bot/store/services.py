"""Store services: functions that take a unit of work (cosmicpython's `services.py`).

StoreError
├── NotFound                 no such user, wallet, credential reference or sync run
├── DiagnosisNotPassed       a credential swap was asked for before the live test passed
└── PendingCredentialInvalid the intake reference is unknown, used, expired or for another wallet
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Protocol

from bot.secret import Secret, mask
from bot.store.crypto import Sealed, credential_aad
from bot.store.model import (
    DEFAULT_ACCOUNT_LABEL,
    ChannelIdentity,
    Credential,
    CredentialStatus,
    DiagnosisRecord,
    RemovalImpact,
    SyncRun,
    SyncStatus,
    Transaction,
    TransactionEdit,
    TransactionOrigin,
    User,
    Wallet,
    utcnow,
)
from bot.store.unit_of_work import AbstractUnitOfWork
from bot.types.confirmation import open_items_to_confirm
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = [
    "StoreError",
    "NotFound",
    "DiagnosisNotPassed",
    "PendingCredentialInvalid",
    "PassedDiagnosis",
    "CredentialUpdate",
    "PENDING_TTL",
    "ensure_user",
    "link_identity",
    "user_for_channel",
    "get_or_create_wallet",
    "store_pending_credential",
    "load_pending_credential",
    "replace_credential",
    "update_or_connect",
    "reveal_credentials",
    "masked_key",
    "seal_credential",
    "open_credential",
    "retire",
    "sync_status",
    "request_sync",
    "removal_impact",
    "add_manual_transaction",
    "edit_transaction",
    "record_diagnosis",
    "reference_passed_test",
    "replace_confirmed_credential",
]

# How long a credential entered in the intake form waits for its live test and swap.
PENDING_TTL: Final = timedelta(minutes=30)
_REFERENCE_PREFIX: Final = "pc_"


class StoreError(Exception):
    """Root of the store services' errors. Messages hold ids and statuses, never secrets."""


class NotFound(StoreError):
    pass


class DiagnosisNotPassed(StoreError):
    pass


class PendingCredentialInvalid(StoreError):
    pass


class PassedDiagnosis(Protocol):
    """What `replace_credential` needs from a diagnosis (`bot.types.diagnosis.Diagnosis` has it)."""

    @property
    def all_passed(self) -> bool: ...


@dataclass(frozen=True)
class CredentialUpdate:
    """What a credential swap did: the wallet's new active credential and the resync that tests it."""

    wallet_id: int
    credential_id: int
    version: int
    api_key_masked: str
    sync_run_id: int


# -- users and wallets ---------------------------------------------------------------------------------------


def ensure_user(uow: AbstractUnitOfWork, handle: str, *, display_name: str = "") -> User:
    """The user with this handle, created when missing (caller commits)."""
    user = uow.users.by_handle(handle)
    if user is None:
        user = User(handle=handle, display_name=display_name)
        uow.users.add(user)
        uow.flush()
    return user


def link_identity(uow: AbstractUnitOfWork, user: User, *, channel: str, external_id: str) -> None:
    """Link a channel identity (Slack user, REST sender id) to a user unless it is linked already."""
    if uow.users.by_channel(channel, external_id) is None:
        assert user.id is not None
        uow.users.add(ChannelIdentity(channel=channel, external_id=external_id, user_id=user.id))
        uow.flush()


def user_for_channel(uow: AbstractUnitOfWork, channel: str, external_id: str) -> User | None:
    """The KeyMedic user behind a channel identity; None for a stranger (a user with no wallets)."""
    return uow.users.by_channel(channel, external_id)


def get_or_create_wallet(
    uow: AbstractUnitOfWork, *, user_id: int, exchange: str, account_label: str = DEFAULT_ACCOUNT_LABEL
) -> Wallet:
    """The user's wallet for this exchange account, created when missing, and locked for this transaction.

    The user row is locked first, so two processes connecting the same account queue up and the second finds
    the first's wallet instead of adding a second one (the unique constraint is the last line of defence).
    """
    if uow.users.lock(user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    wallet = uow.wallets.find(user_id, exchange, account_label)
    if wallet is None:
        wallet = Wallet(user_id=user_id, exchange=exchange, account_label=account_label)
        uow.wallets.add(wallet)
        uow.flush()
    assert wallet.id is not None
    locked = uow.wallets.lock(wallet.id)
    assert locked is not None
    return locked


def _lock_wallet(uow: AbstractUnitOfWork, wallet_id: int) -> Wallet:
    wallet = uow.wallets.lock(wallet_id)
    if wallet is None:
        raise NotFound(f"wallet {wallet_id} does not exist")
    return wallet


# -- credentials ---------------------------------------------------------------------------------------------


def _plaintext(credentials: Credentials) -> bytes:
    return json.dumps(
        {
            "api_key": credentials.api_key,
            "api_secret": credentials.api_secret.reveal(),
            "passphrase": credentials.passphrase.reveal() if credentials.passphrase is not None else None,
            "key_version": credentials.key_version,
        }
    ).encode()


def seal_credential(
    uow: AbstractUnitOfWork, wallet: Wallet, credentials: Credentials, status: CredentialStatus
) -> Credential:
    """A new credential version of the wallet, encrypted and bound to its row (not yet added)."""
    assert wallet.id is not None
    version = uow.credentials.next_version(wallet.id)
    sealed = uow.keys.seal(
        _plaintext(credentials), credential_aad(wallet_id=wallet.id, user_id=wallet.user_id, version=version)
    )
    return Credential(
        wallet_id=wallet.id,
        version=version,
        status=status,
        key_id=sealed.key_id,
        ciphertext=sealed.blob,
        api_key_masked=mask(credentials.api_key),
    )


def _open(uow: AbstractUnitOfWork, wallet: Wallet, credential: Credential) -> Credentials:
    if credential.ciphertext is None or credential.key_id is None:
        raise NotFound(f"credential {credential.id} is retired; its secret was erased")
    assert wallet.id is not None
    aad = credential_aad(wallet_id=wallet.id, user_id=wallet.user_id, version=credential.version)
    data = json.loads(uow.keys.open(Sealed(credential.key_id, credential.ciphertext), aad))
    return Credentials(
        api_key=data["api_key"],
        api_secret=Secret(data["api_secret"]),
        passphrase=Secret(data["passphrase"]) if data.get("passphrase") is not None else None,
        key_version=data.get("key_version"),
    )


def retire(credential: Credential, now: datetime) -> None:
    """Retire a credential and erase its secret: nothing will use it again, so nothing keeps it."""
    credential.status = CredentialStatus.RETIRED
    credential.retired_at = now
    credential.ciphertext = None
    credential.key_id = None
    credential.reference_hash = None


def _reference_hash(reference: str) -> str:
    # Only a hash is stored: someone reading the table cannot replay a reference into a conversation.
    return hashlib.sha256(reference.encode()).hexdigest()


def store_pending_credential(
    uow: AbstractUnitOfWork,
    *,
    wallet_id: int,
    credentials: Credentials,
    conversation_id: str | None = None,
    ttl: timedelta = PENDING_TTL,
    now: datetime | None = None,
) -> str:
    """Keep what the intake form received, encrypted, and return the opaque reference the bot gets instead
    of the secret (DESIGN §5). Commits."""
    now = now or utcnow()
    with uow:
        wallet = _lock_wallet(uow, wallet_id)
        credential = seal_credential(uow, wallet, credentials, CredentialStatus.PENDING)
        reference = _REFERENCE_PREFIX + secrets.token_urlsafe(24)
        credential.reference_hash = _reference_hash(reference)
        credential.expires_at = now + ttl
        credential.conversation_id = conversation_id
        uow.credentials.add(credential)
        uow.commit()
    return reference


def _pending(uow: AbstractUnitOfWork, reference: str, wallet_id: int, now: datetime) -> Credential:
    credential = uow.credentials.by_reference_hash(_reference_hash(reference))
    # One error for unknown, used, expired and foreign references: the caller learns nothing it could probe.
    if (
        credential is None
        or credential.wallet_id != wallet_id
        or credential.status is not CredentialStatus.PENDING
        or credential.expires_at is None
        or credential.expires_at <= now
    ):
        raise PendingCredentialInvalid("this credential reference is unknown, used or expired")
    return credential


def load_pending_credential(
    uow: AbstractUnitOfWork, reference: str, *, wallet_id: int, now: datetime | None = None
) -> Credentials:
    """The credentials behind an intake reference, for the live test. Does not consume the reference."""
    now = now or utcnow()
    with uow:
        credential = _pending(uow, reference, wallet_id, now)
        wallet = uow.wallets.get(wallet_id)
        assert wallet is not None
        return _open(uow, wallet, credential)


def _diagnosis_passed(diagnosis: bool | PassedDiagnosis) -> bool:
    if isinstance(diagnosis, bool):
        return diagnosis
    return bool(diagnosis.all_passed)


def _swap_in(uow: AbstractUnitOfWork, wallet: Wallet, new: Credential, now: datetime) -> CredentialUpdate:
    """Make `new` the wallet's active credential; the active one becomes `previous` until `new` has synced.
    Runs inside the caller's transaction, with the wallet locked."""
    assert wallet.id is not None
    for old in uow.credentials.for_wallet(wallet.id, CredentialStatus.ACTIVE, CredentialStatus.PREVIOUS):
        if old is new:
            continue
        if old.status is CredentialStatus.ACTIVE:
            old.status = CredentialStatus.PREVIOUS
        else:
            # An older `previous` (two swaps before a sync completed): the newest fallback is enough.
            retire(old, now)
    for stale in uow.credentials.for_wallet(wallet.id, CredentialStatus.PENDING):
        if stale is not new and stale.expires_at is not None and stale.expires_at <= now:
            retire(stale, now)
    # The demotion must reach the database before the promotion: one active credential per wallet is a
    # unique index, checked statement by statement.
    uow.flush()
    new.status = CredentialStatus.ACTIVE
    new.activated_at = now
    new.reference_hash = None  # a reference is good for one swap
    new.expires_at = None
    if new.id is None:
        uow.credentials.add(new)
    uow.flush()
    assert new.id is not None
    run = _request_sync(uow, wallet.id, reason="credential_updated", idempotency_key=f"credential:{new.id}")
    assert run.id is not None
    return CredentialUpdate(
        wallet_id=wallet.id,
        credential_id=new.id,
        version=new.version,
        api_key_masked=new.api_key_masked,
        sync_run_id=run.id,
    )


def replace_credential(
    uow: AbstractUnitOfWork,
    wallet_id: int,
    new_credentials: Credentials | str,
    diagnosis_passed: bool | PassedDiagnosis,
    *,
    now: datetime | None = None,
) -> CredentialUpdate:
    """Swap a verified credential into an existing wallet, in one transaction, and queue its first resync.

    `new_credentials` is either the credentials or an intake reference (`store_pending_credential`). Refuses
    unless the live diagnosis passed. The replaced credential stays as `previous` until the new one completes
    a sync (`bot.sync`), then it is retired. Commits; enqueueing the resync job is the caller's next step.
    """
    if not _diagnosis_passed(diagnosis_passed):
        raise DiagnosisNotPassed("the new key has not passed its live test; it was not saved")
    now = now or utcnow()
    with uow:
        wallet = _lock_wallet(uow, wallet_id)
        if isinstance(new_credentials, str):
            new = _pending(uow, new_credentials, wallet_id, now)
        else:
            new = seal_credential(uow, wallet, new_credentials, CredentialStatus.PENDING)
        update = _swap_in(uow, wallet, new, now)
        uow.commit()
    return update


def update_or_connect(
    uow: AbstractUnitOfWork,
    *,
    user_id: int,
    exchange: str,
    credentials: Credentials,
    diagnosis_passed: bool | PassedDiagnosis,
    account_label: str = DEFAULT_ACCOUNT_LABEL,
    now: datetime | None = None,
) -> CredentialUpdate:
    """Update the user's existing connection to this exchange account, or add it when there is none — never a
    second wallet for the same account (the article's "update the existing connection"). One transaction."""
    if not _diagnosis_passed(diagnosis_passed):
        raise DiagnosisNotPassed("the new key has not passed its live test; it was not saved")
    now = now or utcnow()
    with uow:
        wallet = get_or_create_wallet(uow, user_id=user_id, exchange=exchange, account_label=account_label)
        new = seal_credential(uow, wallet, credentials, CredentialStatus.PENDING)
        update = _swap_in(uow, wallet, new, now)
        uow.commit()
    return update


def reveal_credentials(uow: AbstractUnitOfWork, wallet_id: int) -> Credentials:
    """The wallet's active credentials, decrypted (for a sync or a live test; never for display)."""
    wallet = uow.wallets.get(wallet_id)
    if wallet is None:
        raise NotFound(f"wallet {wallet_id} does not exist")
    credential = uow.credentials.active(wallet_id)
    if credential is None:
        raise NotFound(f"wallet {wallet_id} has no active credential")
    return _open(uow, wallet, credential)


def open_credential(uow: AbstractUnitOfWork, credential: Credential) -> Credentials:
    """Decrypt one credential of a wallet (inside the caller's unit of work)."""
    wallet = uow.wallets.get(credential.wallet_id)
    if wallet is None:
        raise NotFound(f"wallet {credential.wallet_id} does not exist")
    return _open(uow, wallet, credential)


def masked_key(uow: AbstractUnitOfWork, wallet_id: int) -> str | None:
    """The active API key as it may be shown back (`****abcd`), or None when the wallet has none."""
    with uow:
        credential = uow.credentials.active(wallet_id)
        return credential.api_key_masked if credential is not None else None


# -- sync runs -----------------------------------------------------------------------------------------------


def _request_sync(uow: AbstractUnitOfWork, wallet_id: int, *, reason: str, idempotency_key: str) -> SyncRun:
    existing = uow.sync_runs.by_idempotency_key(idempotency_key)
    if existing is not None:
        return existing
    run = SyncRun(wallet_id=wallet_id, idempotency_key=idempotency_key, reason=reason)
    uow.sync_runs.add(run)
    uow.flush()
    return run


def request_sync(
    uow: AbstractUnitOfWork, wallet_id: int, *, reason: str = "requested", idempotency_key: str | None = None
) -> int:
    """Queue a resync of a wallet and return its run id; the same idempotency key returns the same run, and a
    wallet with a sync already queued or running gets that one. Commits; the caller enqueues the job."""
    with uow:
        _lock_wallet(uow, wallet_id)
        run = uow.sync_runs.by_idempotency_key(idempotency_key) if idempotency_key is not None else None
        if run is None:
            run = uow.sync_runs.open_for_wallet(wallet_id)
        if run is None:
            key = idempotency_key or f"sync:{secrets.token_hex(12)}"
            run = _request_sync(uow, wallet_id, reason=reason, idempotency_key=key)
        assert run.id is not None
        run_id = run.id
        uow.commit()
    return run_id


def sync_status(uow: AbstractUnitOfWork, sync_run_id: int) -> SyncStatus:
    with uow:
        run = uow.sync_runs.get(sync_run_id)
        if run is None:
            raise NotFound(f"sync run {sync_run_id} does not exist")
        return run.status


# -- live key tests ------------------------------------------------------------------------------------------


def record_diagnosis(
    uow: AbstractUnitOfWork,
    *,
    wallet_id: int,
    exchange: str,
    all_passed: bool,
    outcome: dict[str, object],
    reference: str | None = None,
    conversation_id: str | None = None,
    now: datetime | None = None,
) -> int:
    """Keep the outcome of a live test (no secrets: `Diagnosis.to_dict()`), tied to the intake reference it
    tested when there is one. Commits; returns the record's id."""
    now = now or utcnow()
    with uow:
        credential_id = _pending(uow, reference, wallet_id, now).id if reference is not None else None
        record = DiagnosisRecord(
            wallet_id=wallet_id,
            exchange=exchange,
            all_passed=all_passed,
            outcome=dict(outcome),
            credential_id=credential_id,
            conversation_id=conversation_id,
            created_at=now,
        )
        uow.diagnoses.add(record)
        uow.flush()
        assert record.id is not None
        record_id = record.id
        uow.commit()
    return record_id


def reference_passed_test(
    uow: AbstractUnitOfWork, reference: str, *, wallet_id: int, now: datetime | None = None
) -> bool:
    """Whether the latest live test of the credential behind an intake reference passed (False when it was
    never tested). The key update trusts this record, not anything the conversation claims."""
    now = now or utcnow()
    with uow:
        credential = _pending(uow, reference, wallet_id, now)
        assert credential.id is not None
        record = uow.diagnoses.latest_for_credential(credential.id)
        return record is not None and record.all_passed


def replace_confirmed_credential(
    uow: AbstractUnitOfWork,
    wallet_id: int,
    reference: str,
    *,
    confirmed: Iterable[Item],
    conversation_id: str,
    now: datetime | None = None,
) -> CredentialUpdate:
    """Swap in a pending credential whose latest live test left only items the user may confirm, and which
    the user confirmed in the checklist (`bot.types.confirmation` says which items and why). The
    confirmations are written onto that test's record (`outcome["user_confirmed"]`: items, when, which
    conversation), so the hand-off ticket and support see what was taken on the user's word.

    One transaction with the wallet locked: the record, the swap and the resync all happen, or none. Raises
    `DiagnosisNotPassed` when the test failed, was refused, is from another conversation, or an open item is
    not confirmed; `PendingCredentialInvalid` as `replace_credential` does. Commits.
    """
    now = now or utcnow()
    given = frozenset(confirmed)
    with uow:
        wallet = _lock_wallet(uow, wallet_id)
        new = _pending(uow, reference, wallet_id, now)
        assert new.id is not None
        record = uow.diagnoses.latest_for_credential(new.id)
        # The answers must be to the questions this test raised, in the conversation that ran it.
        if record is None or record.conversation_id not in (None, conversation_id):
            raise DiagnosisNotPassed("the new key has not passed its live test; it was not saved")
        open_items = open_items_to_confirm(record.outcome)
        if open_items is None or not open_items <= given:
            raise DiagnosisNotPassed("the new key has not passed its live test; it was not saved")
        # A new dict: SQLAlchemy notices a JSON column change only by comparing values.
        outcome = json.loads(json.dumps(record.outcome))
        outcome["user_confirmed"] = {
            "items": [item.value for item in Item if item in open_items],
            "at": now.isoformat(),
            "conversation_id": conversation_id,
        }
        record.outcome = outcome
        update = _swap_in(uow, wallet, new, now)
        uow.commit()
    return update


# -- transactions and removal impact -------------------------------------------------------------------------


def removal_impact(uow: AbstractUnitOfWork, wallet_id: int) -> RemovalImpact:
    """Exactly what removing the wallet would delete for good: the user's edits and manual transactions."""
    with uow:
        if uow.wallets.get(wallet_id) is None:
            raise NotFound(f"wallet {wallet_id} does not exist")
        return uow.transactions.removal_impact(wallet_id)


def add_manual_transaction(
    uow: AbstractUnitOfWork,
    *,
    wallet_id: int,
    kind: str,
    asset: str,
    amount: Decimal,
    occurred_at: datetime,
    fee: Decimal | None = None,
) -> Transaction:
    """A transaction the user added by hand (a sync never touches it). Runs in the caller's transaction."""
    transaction = Transaction(
        wallet_id=wallet_id,
        origin=TransactionOrigin.MANUAL,
        kind=kind,
        asset=asset,
        amount=amount,
        occurred_at=occurred_at,
        fee=fee,
    )
    uow.transactions.add(transaction)
    uow.flush()
    return transaction


def edit_transaction(
    uow: AbstractUnitOfWork,
    transaction_id: int,
    *,
    category: str | None = None,
    note: str | None = None,
    cost_basis: Decimal | None = None,
) -> TransactionEdit:
    """Record the user's manual edit of a transaction (fields left None keep their earlier edit). Runs in
    the caller's transaction."""
    edit = uow.transactions.edit_of(transaction_id)
    if edit is None:
        edit = TransactionEdit(transaction_id=transaction_id)
        uow.transactions.add(edit)
    if category is not None:
        edit.category = category
    if note is not None:
        edit.note = note or None
    if cost_basis is not None:
        edit.cost_basis = cost_basis
    edit.edited_at = utcnow()
    uow.flush()
    return edit
