"""Slack's state in the store: deliveries already acted on, thread owners, and one-time account links.

Used by the Slack channel (`channels/slack.py`, in the Rasa process) and the web app's link endpoint
(`bot/web/slack_link.py`); docs/slack.md. Everything is in the database, not in a process's memory, so
several Rasa replicas agree on what was seen and who owns a thread.

Two kinds of channel identity (`channel_identities`) are involved:

- `slack_user` / `<team id>:<user id>` → the KeyMedic user a Slack user linked to (the durable link);
- `slack` / `<conversation id>` → the KeyMedic user whose conversation a Slack thread is. This is what
  `SupportDesk` looks up (`tracker.get_latest_input_channel()` is "slack", the sender id is the thread's
  conversation id), exactly as for the widget's `socketio` sessions.

A link proves both ends (issue 15). The Slack user gets a one-time link token (`sl_…`) privately in Slack;
whoever opens it signed in to KeyMedic is shown a short code (`issue_link_code`) bound to that Slack user and
to themselves; the link is made only when that same Slack user sends that code to the bot
(`redeem_link_code`). So neither someone who forwards their link to a victim, nor someone who opens a victim's
link, ends up linked: each would need what only the other end has. Every new link leaves a notice for the
KeyMedic account in the outbox (`ACCOUNT_NOTICE`), and `unlink` removes links.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import and_, delete, select, update

from bot.store import orm
from bot.store.model import OutboxMessage, User
from bot.store.repository import _rowcount, _upsert_insert
from bot.store.services import link_identity
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "SLACK_USER_CHANNEL",
    "CONVERSATION_CHANNEL",
    "LINK_TOKEN_TTL",
    "LINK_CODE_TTL",
    "LINK_CODE_ATTEMPTS",
    "ACCOUNT_NOTICE",
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
    "issue_link_code",
    "code_candidate",
    "redeem_link_code",
    "slack_links",
    "unlink",
]

SLACK_USER_CHANNEL: Final = "slack_user"
CONVERSATION_CHANNEL: Final = "slack"
# Long enough to open the link and sign in; short enough that a link left in a channel soon stops working.
LINK_TOKEN_TTL: Final = timedelta(minutes=15)
# Slack retries an event for about an hour (three retries, the last after ~5 minutes) and a button stays
# clickable for ever, so a day of memory covers retries; a click is also refused by its message's state.
DELIVERY_MEMORY: Final = timedelta(days=1)
_TOKEN_PREFIX: Final = "sl_"
# Long enough to switch to Slack and type it; the web page says so.
LINK_CODE_TTL: Final = timedelta(minutes=10)
# Wrong codes a Slack user may send before every code waiting for them is burnt: 5 tries at one in 31^8
# (about 8.5e11) leave a guesser nothing, and the rightful user opens the link again.
LINK_CODE_ATTEMPTS: Final = 5
# No 0/O, 1/I/L: read off a screen and typed on a phone without doubt. Shown as two groups of four.
_CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH: Final = 8
# The outbox reason of "a Slack account was linked to your KeyMedic account" (delivered by `bot.notices`).
ACCOUNT_NOTICE: Final = "account_notice"


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
    """A one-time token for this Slack user's link page (caller commits): whoever opens it signed in gets a
    code that only this Slack user can use (`issue_link_code`). Only its SHA-256 is stored; lapsed tokens
    older than a day are deleted on the way."""
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


# -- the code that proves the Slack end ----------------------------------------------------------------------


def _code_hash(identity: str, code: str) -> str:
    # Bound to the Slack user: the same code sent by another Slack user matches nothing.
    return hashlib.sha256(f"{identity}\x00{code}".encode()).hexdigest()


def _utc(uow: SqlAlchemyUnitOfWork, value: object) -> datetime:
    moment = orm.UtcDateTime().process_result_value(value, uow.session.get_bind().dialect)
    assert moment is not None
    return moment


def issue_link_code(uow: SqlAlchemyUnitOfWork, token: str, user: User, *, now: datetime) -> str:
    """Use up the link token and return a short code that links its Slack user to `user` once that Slack
    user sends it to the bot (caller commits). Only the code's hash is stored; an older code waiting for the
    same Slack user is replaced.

    `LinkRefused`: the token's (`token_unknown`, `token_used`, `token_expired`), or `already_linked` when the
    Slack user belongs to another account (a link never moves an account).
    """
    link = pending_link(uow, token, now=now)
    current = uow.users.by_channel(SLACK_USER_CHANNEL, link.slack_identity)
    if current is not None and current.id != user.id:
        raise LinkRefused("already_linked")
    table = orm.slack_link_tokens
    assert user.id is not None
    # Compare-and-set: two pages racing with one token cannot both get a code.
    claimed = uow.session.execute(
        update(table)
        .where(table.c.token_hash == _hash(token), table.c.used_at.is_(None), table.c.expires_at > now)
        .values(used_at=now, user_id=user.id)
    )
    if _rowcount(claimed) != 1:
        raise LinkRefused("token_used")
    codes = orm.slack_link_codes
    uow.session.execute(
        delete(codes).where(
            (codes.c.slack_identity == link.slack_identity) | (codes.c.expires_at < now - timedelta(days=1))
        )
    )
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    uow.session.execute(
        codes.insert().values(
            code_hash=_code_hash(link.slack_identity, code),
            slack_identity=link.slack_identity,
            user_id=user.id,
            attempts=0,
            created_at=now,
            expires_at=now + LINK_CODE_TTL,
        )
    )
    return f"{code[:4]}-{code[4:]}"


def code_candidate(text: str) -> str | None:
    """The code in a message that is nothing but a code (`ABCD-EFGH`, `abcd efgh`), normalised; else None."""
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != _CODE_LENGTH or any(c not in _CODE_ALPHABET for c in compact):
        return None
    return compact


def redeem_link_code(
    uow: SqlAlchemyUnitOfWork, team_id: str, user_id: str, code: str, *, now: datetime
) -> User:
    """Link this Slack user to the KeyMedic user their waiting code was issued to, when `code` is it (caller
    commits); the KeyMedic user. Leaves a notice for that account in the outbox.

    `LinkRefused`: `no_code` (nothing waiting for this Slack user: expired, burnt or never issued),
    `wrong_code` (counted; the fifth burns every code waiting for them), `already_linked`.
    """
    identity = slack_identity(team_id, user_id)
    codes = orm.slack_link_codes
    live = and_(
        codes.c.slack_identity == identity,
        codes.c.used_at.is_(None),
        codes.c.expires_at > now,
        codes.c.attempts < LINK_CODE_ATTEMPTS,
    )
    rows = uow.session.execute(select(codes.c.id, codes.c.code_hash, codes.c.user_id).where(live)).all()
    if not rows:
        raise LinkRefused("no_code")
    wanted = _code_hash(identity, code)
    match = next((row for row in rows if hmac.compare_digest(str(row.code_hash), wanted)), None)
    if match is None:
        uow.session.execute(update(codes).where(live).values(attempts=codes.c.attempts + 1))
        raise LinkRefused("wrong_code")
    # Compare-and-set, as for the token: a code sent twice at once links once.
    claimed = uow.session.execute(update(codes).where(live, codes.c.id == match.id).values(used_at=now))
    if _rowcount(claimed) != 1:
        raise LinkRefused("no_code")
    user = uow.users.get(int(match.user_id))
    current = uow.users.by_channel(SLACK_USER_CHANNEL, identity)
    if user is None or (current is not None and current.id != user.id):
        raise LinkRefused("already_linked")
    if current is None:
        link_identity(uow, user, channel=SLACK_USER_CHANNEL, external_id=identity)
        uow.outbox.add(
            OutboxMessage(
                delivery_id=f"slack-link:{match.id}",
                reason=ACCOUNT_NOTICE,
                payload={"kind": "slack_linked", "slack_user": identity, "linked_at": now.isoformat()},
                user_id=user.id,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return user


def slack_links(uow: SqlAlchemyUnitOfWork, user: User) -> list[tuple[str, datetime]]:
    """The Slack users linked to `user`, with when each was linked, oldest first."""
    table = orm.channel_identities
    rows = uow.session.execute(
        select(table.c.external_id, table.c.created_at)
        .where(table.c.user_id == user.id, table.c.channel == SLACK_USER_CHANNEL)
        .order_by(table.c.created_at, table.c.id)
    ).all()
    return [(str(row.external_id), _utc(uow, row.created_at)) for row in rows]


def unlink(uow: SqlAlchemyUnitOfWork, user: User, identity: str | None = None) -> list[str]:
    """Remove `user`'s link to the Slack user `identity` (`<team>:<user>`), or every Slack link of theirs
    (caller commits); the identities removed. The threads they opened stay theirs, but an unlinked Slack user
    reaches nothing (`channels.slack` resolves the Slack user first)."""
    table = orm.channel_identities
    chosen = [found for found, _ in slack_links(uow, user) if identity is None or found == identity]
    if chosen:
        uow.session.execute(
            delete(table).where(
                table.c.user_id == user.id,
                table.c.channel == SLACK_USER_CHANNEL,
                table.c.external_id.in_(chosen),
            )
        )
    return chosen
