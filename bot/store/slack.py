"""Slack's state in the store: deliveries already acted on, thread owners, and one-time account links.

Used by the Slack channel (`channels/slack.py`, in the Rasa process) and the web app's link endpoint
(`bot/web/slack_link.py`); docs/slack.md. Everything is in the database, not in a process's memory, so
several Rasa replicas agree on what was seen and who owns a thread.

Two kinds of channel identity (`channel_identities`) are involved:

- `slack_user` / `<team id>:<user id>` → the KeyMedic user a Slack user linked to (the durable link);
- `slack` / `<conversation id>` → the KeyMedic user whose conversation a Slack thread is. This is what
  `SupportDesk` looks up (`tracker.get_latest_input_channel()` is "slack", the sender id is the thread's
  conversation id), exactly as for the widget's `socketio` sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update

from bot.store import orm
from bot.store.model import User
from bot.store.repository import _rowcount, _upsert_insert
from bot.store.services import link_identity
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "SLACK_USER_CHANNEL",
    "CONVERSATION_CHANNEL",
    "LINK_TOKEN_TTL",
    "DELIVERY_MEMORY",
    "LinkRefused",
    "PendingLink",
    "slack_identity",
    "first_delivery",
    "forget_deliveries",
    "linked_user",
    "bind_conversation",
    "issue_link_token",
    "pending_link",
    "redeem_link_token",
]

SLACK_USER_CHANNEL: Final = "slack_user"
CONVERSATION_CHANNEL: Final = "slack"
# Long enough to open the link and sign in; short enough that a link left in a channel soon stops working.
LINK_TOKEN_TTL: Final = timedelta(minutes=15)
# Slack retries an event for about an hour (three retries, the last after ~5 minutes) and a button stays
# clickable for ever, so a day of memory covers retries; a click is also refused by its message's state.
DELIVERY_MEMORY: Final = timedelta(days=1)
_TOKEN_PREFIX: Final = "sl_"


class LinkRefused(Exception):
    """A link token cannot be used. `code` is what the caller is told."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class PendingLink:
    """A link token that can still be confirmed: which Slack user it would link, and until when."""

    slack_identity: str
    expires_at: datetime


def slack_identity(team_id: str, user_id: str) -> str:
    """The `slack_user` identity of a Slack user: user ids are unique only within a workspace."""
    return f"{team_id}:{user_id}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- deliveries ---------------------------------------------------------------------------------------------


def first_delivery(uow: SqlAlchemyUnitOfWork, key: str, *, now: datetime) -> bool:
    """Record that a delivery (`key`) is being acted on; False when it was seen before (caller commits).

    `INSERT … ON CONFLICT DO NOTHING` on the key: of two replicas receiving the same retried event at the
    same moment exactly one inserts the row, on SQLite and on PostgreSQL.
    """
    statement = (
        _upsert_insert(uow.session, orm.slack_events)
        .values(event_key=key[:255], received_at=now)
        .on_conflict_do_nothing(index_elements=["event_key"])
    )
    return _rowcount(uow.session.execute(statement)) == 1


def forget_deliveries(uow: SqlAlchemyUnitOfWork, *, before: datetime) -> int:
    """Drop delivery keys recorded before `before` (caller commits); how many were dropped."""
    table = orm.slack_events
    return _rowcount(uow.session.execute(delete(table).where(table.c.received_at < before)))


# -- users and threads --------------------------------------------------------------------------------------


def linked_user(uow: SqlAlchemyUnitOfWork, team_id: str, user_id: str) -> User | None:
    """The KeyMedic user a Slack user linked to; None for an unlinked Slack user."""
    return uow.users.by_channel(SLACK_USER_CHANNEL, slack_identity(team_id, user_id))


def bind_conversation(uow: SqlAlchemyUnitOfWork, conversation_id: str, user: User) -> User:
    """The owner of a Slack thread's conversation: `user` when the thread is new (it is bound to them, the
    caller commits), else whoever it was bound to first. A thread is one user's conversation."""
    owner = uow.users.by_channel(CONVERSATION_CHANNEL, conversation_id)
    if owner is not None:
        return owner
    link_identity(uow, user, channel=CONVERSATION_CHANNEL, external_id=conversation_id)
    return user


# -- linking a Slack user to a KeyMedic user ----------------------------------------------------------------


def issue_link_token(
    uow: SqlAlchemyUnitOfWork, team_id: str, user_id: str, *, now: datetime, ttl: timedelta = LINK_TOKEN_TTL
) -> str:
    """A one-time token that links this Slack user to whichever KeyMedic user confirms it (caller commits).
    Only its SHA-256 is stored; lapsed tokens older than a day are deleted on the way."""
    table = orm.slack_link_tokens
    uow.session.execute(delete(table).where(table.c.expires_at < now - timedelta(days=1)))
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    uow.session.execute(
        table.insert().values(
            token_hash=_hash(token),
            slack_identity=slack_identity(team_id, user_id),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


def pending_link(uow: SqlAlchemyUnitOfWork, token: str, *, now: datetime) -> PendingLink:
    """What an unused, unexpired link token would link; `LinkRefused` (`token_unknown`, `token_used`,
    `token_expired`) otherwise."""
    table = orm.slack_link_tokens
    if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX) or len(token) > 100:
        raise LinkRefused("token_unknown")
    row = uow.session.execute(
        select(table.c.slack_identity, table.c.expires_at, table.c.used_at).where(
            table.c.token_hash == _hash(token)
        )
    ).first()
    if row is None:
        raise LinkRefused("token_unknown")
    if row.used_at is not None:
        raise LinkRefused("token_used")
    expires_at = orm.UtcDateTime().process_result_value(row.expires_at, uow.session.get_bind().dialect)
    assert expires_at is not None
    if expires_at <= now:
        raise LinkRefused("token_expired")
    return PendingLink(slack_identity=str(row.slack_identity), expires_at=expires_at)


def redeem_link_token(uow: SqlAlchemyUnitOfWork, token: str, user: User, *, now: datetime) -> str:
    """Link the token's Slack user to `user` and use the token up (caller commits); the Slack identity.

    `LinkRefused("already_linked")` when that Slack user is linked to someone else: unlinking is support's
    job, never a side effect of a link (a stolen link must not move an account).
    """
    link = pending_link(uow, token, now=now)
    table = orm.slack_link_tokens
    assert user.id is not None
    # Compare-and-set: two confirmations racing with one token cannot both redeem it.
    claimed = uow.session.execute(
        update(table)
        .where(table.c.token_hash == _hash(token), table.c.used_at.is_(None), table.c.expires_at > now)
        .values(used_at=now, user_id=user.id)
    )
    if _rowcount(claimed) != 1:
        raise LinkRefused("token_used")
    current = uow.users.by_channel(SLACK_USER_CHANNEL, link.slack_identity)
    if current is not None and current.id != user.id:
        raise LinkRefused("already_linked")
    link_identity(uow, user, channel=SLACK_USER_CHANNEL, external_id=link.slack_identity)
    return link.slack_identity
