"""The store's domain model: plain dataclasses that know nothing about SQL (`orm.py` maps them).

Ids are `None` until the row is flushed. Times are timezone-aware UTC. Amounts are `Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = [
    "utcnow",
    "CredentialStatus",
    "SyncStatus",
    "TransactionOrigin",
    "User",
    "ChannelIdentity",
    "Wallet",
    "Credential",
    "Transaction",
    "TransactionEdit",
    "SyncRun",
    "Ticket",
    "OutboxMessage",
    "IntakeToken",
    "DiagnosisRecord",
    "RemovalImpact",
    "DEFAULT_ACCOUNT_LABEL",
]

# A user with one account on an exchange (the usual case) gets this label; a second account needs its own.
DEFAULT_ACCOUNT_LABEL = "default"


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class CredentialStatus(str, Enum):
    """A credential's place in its wallet's history.

    pending  -> entered through the intake form, not yet swapped in (may expire unused)
    active   -> the one syncs use; at most one per wallet
    previous -> the one it replaced, kept until the active one has synced once (DESIGN §5)
    retired  -> no longer used; its ciphertext is erased
    """

    PENDING = "pending"
    ACTIVE = "active"
    PREVIOUS = "previous"
    RETIRED = "retired"


class SyncStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TransactionOrigin(str, Enum):
    EXCHANGE = "exchange"  # came from the exchange's history; has an exchange transaction id
    MANUAL = "manual"  # added by the user; a sync never touches it


@dataclass(eq=False)
class User:
    handle: str
    display_name: str = ""
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(eq=False)
class ChannelIdentity:
    """Who a user is on one channel: Slack user id, the REST channel's sender id, the widget's JWT subject."""

    channel: str
    external_id: str
    user_id: int
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(eq=False)
class Wallet:
    """One connection of a user's exchange account. Updating a key changes this row's credentials, never adds
    a second wallet (the article: "update the existing connection instead of adding it a second time")."""

    user_id: int
    exchange: str
    account_label: str = DEFAULT_ACCOUNT_LABEL
    display_name: str = ""
    created_at: datetime = field(default_factory=utcnow)
    last_synced_at: datetime | None = None
    id: int | None = None


@dataclass(eq=False)
class Credential:
    """One version of a wallet's API credentials, encrypted (`crypto.py`). `api_key_masked` is all that is
    ever shown back (`****abcd`)."""

    wallet_id: int
    version: int
    status: CredentialStatus
    key_id: str | None
    ciphertext: bytes | None
    api_key_masked: str
    created_at: datetime = field(default_factory=utcnow)
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    # Intake-form credentials only: sha256 of the opaque reference handed to the bot, and when it lapses.
    reference_hash: str | None = None
    expires_at: datetime | None = None
    conversation_id: str | None = None
    id: int | None = None


@dataclass(eq=False)
class Transaction:
    """A wallet transaction. Source fields come from the exchange and a sync refreshes them; the user's
    changes live in `TransactionEdit`, so a sync can never overwrite them."""

    wallet_id: int
    origin: TransactionOrigin
    kind: str
    asset: str
    amount: Decimal
    occurred_at: datetime
    exchange_tx_id: str | None = None
    fee: Decimal | None = None
    fee_asset: str | None = None
    raw: str | None = None  # the exchange's record as canonical JSON text
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(eq=False)
class TransactionEdit:
    """The user's manual edits of one transaction. A `None` field means "not edited"."""

    transaction_id: int
    category: str | None = None
    note: str | None = None
    cost_basis: Decimal | None = None
    edited_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(eq=False)
class SyncRun:
    """One resync of a wallet. `error` says why it failed, in words that hold no secret."""

    wallet_id: int
    idempotency_key: str
    status: SyncStatus = SyncStatus.QUEUED
    reason: str = ""
    credential_id: int | None = None
    # Bumped by every claim of the run; a worker whose claim was taken over (it looked dead) stops.
    attempt: int = 0
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    id: int | None = None


@dataclass(eq=False)
class Ticket:
    """A support hand-off (DESIGN §6): at most one per conversation."""

    conversation_id: str
    reason: str
    user_id: int | None = None
    wallet_id: int | None = None
    status: str = "open"
    payload: dict[str, Any] = field(default_factory=dict)
    removal_approved_at: datetime | None = None
    removal_approved_by: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(eq=False)
class OutboxMessage:
    """A notification waiting to be delivered (to support, to a user). `delivery_id` makes a delivery
    idempotent: the receiver, and the worker, can tell a retry from a new message."""

    delivery_id: str
    reason: str
    payload: dict[str, Any]
    conversation_id: str | None = None
    user_id: int | None = None
    wallet_id: int | None = None
    ticket_id: int | None = None
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    delivered_at: datetime | None = None
    id: int | None = None


@dataclass(eq=False)
class IntakeToken:
    """A one-time permission to post one credential into one wallet, for one user and conversation
    (DESIGN §5, `bot.intake`). Only the token's SHA-256 is kept; `used_at` is set when it is redeemed."""

    token_hash: str
    user_id: int
    wallet_id: int
    conversation_id: str
    expires_at: datetime
    created_at: datetime = field(default_factory=utcnow)
    used_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class RemovalImpact:
    """What removing a wallet would delete that re-adding it would not bring back (the article's warning)."""

    category_changes: int
    notes: int
    cost_basis_changes: int
    manual_transactions: int

    @property
    def total(self) -> int:
        return self.category_changes + self.notes + self.cost_basis_changes + self.manual_transactions

    def to_dict(self) -> dict[str, int]:
        return {
            "category_changes": self.category_changes,
            "notes": self.notes,
            "cost_basis_changes": self.cost_basis_changes,
            "manual_transactions": self.manual_transactions,
            "total": self.total,
        }


@dataclass(eq=False)
class DiagnosisRecord:
    """One live test of a key (DESIGN §4): each checklist item's outcome with the exchange's raw code, as
    `bot.types.diagnosis.Diagnosis.to_dict()` gives it — never the key itself. The key update reads it to know
    the test passed; the hand-off ticket and the analytics read it to know what failed."""

    wallet_id: int
    exchange: str
    all_passed: bool
    outcome: dict[str, Any]
    credential_id: int | None = None
    conversation_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None
