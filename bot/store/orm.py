"""Tables, and the imperative mapping of the dataclasses in `model.py` onto them.

The schema changes only through Alembic (`migrations/`); `metadata` here is what autogenerate and
pytest-alembic's `test_model_definitions_match_ddl` compare the migrations against.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator

from bot.store import model

__all__ = [
    "metadata",
    "users",
    "channel_identities",
    "wallets",
    "credentials",
    "transactions",
    "transaction_edits",
    "sync_runs",
    "sync_staged_transactions",
    "tickets",
    "outbox",
    "intake_tokens",
    "diagnoses",
    "slack_events",
    "slack_link_tokens",
    "slack_link_codes",
    "outreach",
    "agents",
    "agent_credentials",
    "agent_password_links",
    "agent_sessions",
    "agent_slack_users",
    "support_threads",
    "start_mappers",
    "canonical_decimal",
    "canonical_json",
]

# Named constraints, so migrations (and SQLite batch mode, which rebuilds tables) can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def canonical_decimal(value: Decimal) -> str:
    """One spelling per number ("1.50" and "1.5" are the same amount), so the text compares equal in SQL."""
    if not value.is_finite():
        raise ValueError("an amount must be a finite number")
    text_value = format(value.normalize(), "f")
    return "0" if text_value in ("-0", "0") else text_value


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys, no spaces), so an unchanged record compares equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as canonical text. SQLite has no exact decimal type (SQLAlchemy would round
    through float), and crypto amounts carry up to 18 decimals."""

    impl = String(80)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return canonical_decimal(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset, PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store timezone-aware datetimes only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _enum(enum_class: type[Enum], name: str) -> SqlEnum:
    # VARCHAR plus a CHECK constraint (not a native PostgreSQL ENUM): adding a status stays a small migration.
    return SqlEnum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("handle", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

channel_identities = Table(
    "channel_identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("channel", "external_id"),
)

wallets = Table(
    "wallets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("exchange", String(32), nullable=False),
    Column("account_label", String(100), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_synced_at", UtcDateTime, nullable=True),
    # One wallet per user and exchange account: the last line of defence against a second connection.
    UniqueConstraint("user_id", "exchange", "account_label"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", _enum(model.CredentialStatus, "credential_status"), nullable=False),
    Column("key_id", String(64), nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
    Column("api_key_masked", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("retired_at", UtcDateTime, nullable=True),
    Column("reference_hash", String(64), nullable=True, unique=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("conversation_id", String(255), nullable=True),
    UniqueConstraint("wallet_id", "version"),
    CheckConstraint(
        "status = 'retired' OR (ciphertext IS NOT NULL AND key_id IS NOT NULL)",
        name="secret_kept_until_retired",
    ),
)
# At most one active credential per wallet, whatever the code above it does.
Index(
    "uq_credentials_one_active_per_wallet",
    credentials.c.wallet_id,
    unique=True,
    sqlite_where=text("status = 'active'"),
    postgresql_where=text("status = 'active'"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False),
    Column("origin", _enum(model.TransactionOrigin, "transaction_origin"), nullable=False),
    Column("exchange_tx_id", String(255), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("amount", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=True),
    Column("fee_asset", String(32), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("raw", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Merge key of a resync. Manual transactions have no exchange id, and NULLs never collide.
    UniqueConstraint("wallet_id", "exchange_tx_id"),
    CheckConstraint("(origin = 'manual') = (exchange_tx_id IS NULL)", name="exchange_id_iff_from_exchange"),
)

transaction_edits = Table(
    "transaction_edits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "transaction_id",
        Integer,
        ForeignKey("transactions.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("category", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Column("cost_basis", DecimalText, nullable=True),
    Column("edited_at", UtcDateTime, nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", _enum(model.SyncStatus, "sync_status"), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("credential_id", Integer, ForeignKey("credentials.id", ondelete="SET NULL"), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("heartbeat_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_sync_runs_wallet_id_status", "wallet_id", "status"),
)

# Source transactions a running sync has fetched so far. Applied to `transactions` in one transaction when the
# fetch completes; a failed or killed sync leaves only rows here, which the next attempt of the run discards.
sync_staged_transactions = Table(
    "sync_staged_transactions",
    metadata,
    Column("sync_run_id", Integer, ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("exchange_tx_id", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("amount", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=True),
    Column("fee_asset", String(32), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("raw", Text, nullable=True),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True),
    # Never two tickets for one conversation (DESIGN §6).
    Column("conversation_id", String(255), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="SET NULL"), nullable=True),
    Column("reason", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("removal_approved_at", UtcDateTime, nullable=True),
    Column("removal_approved_by", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", String(200), nullable=False, unique=True),
    Column("reason", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("conversation_id", String(255), nullable=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="SET NULL"), nullable=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

# One-time intake-form tokens (`bot.intake`): a token is good for one credential submission, by one user,
# into one wallet. Only its SHA-256 is stored, so reading the table does not let anyone post a credential.
intake_tokens = Table(
    "intake_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False),
    Column("conversation_id", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("used_at", UtcDateTime, nullable=True),
)

# Live key tests (`bot.diagnosis`), newest last. `outcome` holds item statuses, fixes and raw exchange codes;
# secrets never reach it (Diagnosis.to_dict() is built without them).
diagnoses = Table(
    "diagnoses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="SET NULL"), nullable=True, index=True
    ),
    Column("conversation_id", String(255), nullable=True),
    Column("exchange", String(32), nullable=False),
    Column("all_passed", Boolean, nullable=False),
    Column("outcome", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_diagnoses_wallet_id_created_at", "wallet_id", "created_at"),
)

# Slack deliveries already acted on (`bot.store.slack`): the Events API's `event_id`, a message, or the
# message whose button was clicked. Slack retries an event it thinks was lost, and a user can click a button
# twice; a row here makes the second one a no-op on every Rasa replica. Rows older than a day are pruned.
slack_events = Table(
    "slack_events",
    metadata,
    Column("event_key", String(255), primary_key=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
)

# One-time links that tie a Slack user to a KeyMedic user (`bot.store.slack`; docs/slack.md "Linking").
# Only the token's SHA-256 is stored; `user_id` is who confirmed it.
slack_link_tokens = Table(
    "slack_link_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("slack_identity", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("used_at", UtcDateTime, nullable=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
)

# The code a signed-in user is shown for a Slack link and must send to the bot from that Slack account
# (`bot.store.slack.issue_link_code`): only its hash, bound to the Slack user and the KeyMedic user; a few
# wrong tries burn it.
slack_link_codes = Table(
    "slack_link_codes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("slack_identity", String(255), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("used_at", UtcDateTime, nullable=True),
)

# KeyMedic's own messages after a resync failed on the key (`bot.outreach`): at most one per wallet and UTC
# day, held by the unique constraint, not by a read-then-write. `status`: pending -> sending (a claim, leased
# until `lease_until`) -> sent, or skipped (`detail` says why); a failed attempt goes back to pending.
outreach = Table(
    "outreach",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wallet_id", Integer, ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False),
    Column("day", Date, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("sync_run_id", Integer, ForeignKey("sync_runs.id", ondelete="SET NULL"), nullable=True),
    Column("exchange", String(32), nullable=False),
    Column("raw_code", String(100), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("conversation_id", String(255), nullable=True),
    Column("detail", String(300), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    UniqueConstraint("wallet_id", "day"),
)

# Support agents and automations that use the agent API (`bot.store.agents`; docs/handoff.md "Agents").
# An agent is never deleted, only disabled, so what it did stays attributable. Issue 16's console adds an
# optional password hash here.
agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("disabled_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # Console sign-in (issue 16, `bot.store.agent_signin`): a scrypt hash, and a lockout after failures.
    Column("password_hash", String(255), nullable=True),
    Column("failed_signins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime, nullable=True),
    CheckConstraint("kind IN ('human', 'automation')", name="kind_known"),
)

# An agent's API credentials. Only the SHA-256 of the token is stored: the token is 32 random bytes, so a
# plain hash is enough (no password stretching), and a stolen table opens nothing. `label` says where a
# credential came from (`cli`, `local`, `env`), so the environment's credential can be replaced on its own.
agent_credentials = Table(
    "agent_credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)


def _agent_tokens(name: str) -> Table:
    """A table of an agent's single-purpose random tokens, kept as SHA-256 only; `ended_at` marks a used
    set-password link or an ended console session."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("token_hash", String(64), nullable=False, unique=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("expires_at", UtcDateTime, nullable=False),
        Column("ended_at", UtcDateTime, nullable=True),
    )


agent_password_links = _agent_tokens("agent_password_links")
agent_sessions = _agent_tokens("agent_sessions")

# The Slack users who act as an agent in the support channel (`bot.store.agent_slack`; docs/slack.md
# "The support channel"): `TEAM:USER`, since Slack user ids are unique only within a workspace.
agent_slack_users = Table(
    "agent_slack_users",
    metadata,
    Column("slack_identity", String(255), primary_key=True),
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Each ticket notification posted to the support channel: its channel and `ts`, the root of the thread in
# which agents reply to the user (`bot.store.agent_slack`). A ticket reopened later gets a thread per opening.
support_threads = Table(
    "support_threads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("channel", String(64), nullable=False),
    Column("thread_ts", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("channel", "thread_ts"),
)

_mapper_registry = registry(metadata=metadata)
_mapped = False
_mapping_lock = threading.Lock()


def start_mappers() -> None:
    """Map the dataclasses onto the tables (once per process; later calls do nothing)."""
    global _mapped
    with _mapping_lock:  # units of work opened at once in worker threads must not map twice
        if _mapped:
            return
        _map_all()
        _mapped = True


def _map_all() -> None:
    _mapper_registry.map_imperatively(model.User, users)
    _mapper_registry.map_imperatively(model.ChannelIdentity, channel_identities)
    _mapper_registry.map_imperatively(model.Wallet, wallets)
    _mapper_registry.map_imperatively(model.Credential, credentials)
    _mapper_registry.map_imperatively(model.Transaction, transactions)
    _mapper_registry.map_imperatively(model.TransactionEdit, transaction_edits)
    _mapper_registry.map_imperatively(model.SyncRun, sync_runs)
    _mapper_registry.map_imperatively(model.Ticket, tickets)
    _mapper_registry.map_imperatively(model.OutboxMessage, outbox)
    _mapper_registry.map_imperatively(model.IntakeToken, intake_tokens)
    _mapper_registry.map_imperatively(model.DiagnosisRecord, diagnoses)
