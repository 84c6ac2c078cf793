"""Console sign-in for support agents (issue 16): passwords, one-time set-password links, lockout, sessions.

A password is set only through a one-time link (`issue_password_link`, 24 hours), hashed with scrypt (a
memory-hard key derivation in the standard library). Sign-in counts failures in a row; after
`MAX_FAILED_SIGNINS` the agent is locked out for `LOCKOUT` whatever it types, so guessing costs hours, not
seconds. A session is a random token in a cookie, stored as its SHA-256 only; it ends at sign-out, after
`SESSION_LIFETIME`, and at once when the agent is disabled (the lookup requires an enabled agent, and
`bot.store.agents.disable_agent` also ends the rows). Only human agents sign in: automations use the API.

SignInError
├── LinkUnusable    the set-password link is unknown, used or expired
├── WeakPassword    the new password is too short or too long
└── SignInRefused   wrong email or password, a disabled agent, or a locked-out one (one message for all)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import insert, select, update
from sqlalchemy.engine import CursorResult

from bot.store import orm
from bot.store.agents import HUMAN, Agent, InvalidAgent, _agent, _normalized_email
from bot.store.model import utcnow
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "SignInError",
    "LinkUnusable",
    "WeakPassword",
    "SignInRefused",
    "LINK_LIFETIME",
    "SESSION_LIFETIME",
    "MAX_FAILED_SIGNINS",
    "LOCKOUT",
    "MIN_PASSWORD_CHARS",
    "hash_password",
    "verify_password",
    "issue_password_link",
    "set_password",
    "sign_in",
    "session_agent",
    "end_session",
    "csrf_token",
]

LINK_LIFETIME: Final = timedelta(hours=24)
SESSION_LIFETIME: Final = timedelta(hours=12)
MAX_FAILED_SIGNINS: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 256
# scrypt with N=2^15, r=8: 32 MiB and ~0.1 s per guess here (OWASP's floor is N=2^17 at r=8, p=1 for
# interactive logins on bigger machines; the parameters are stored with each hash, so they can grow).
_N, _R, _P = 2**15, 8, 1
_MAXMEM: Final = 64 * 1024 * 1024
# Compared against when the email is unknown, so an unknown email costs the same time as a wrong password.
_DUMMY_HASH: Final = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="


class SignInError(Exception):
    """Root of the sign-in errors. Messages never hold a password or a token."""


class LinkUnusable(SignInError):
    pass


class WeakPassword(SignInError):
    pass


class SignInRefused(SignInError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64), with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _human(uow: SqlAlchemyUnitOfWork, email: str) -> Any:
    return uow.session.execute(
        select(orm.agents).where(orm.agents.c.email == email, orm.agents.c.kind == HUMAN)
    ).first()


def issue_password_link(uow: SqlAlchemyUnitOfWork, email: str, *, now: datetime | None = None) -> str:
    """A one-time token to set the password of an enabled human agent (valid `LINK_LIFETIME`); earlier
    unused links stop working. Commits. Raises `InvalidAgent` for an unknown, disabled or automation agent."""
    email, now = _normalized_email(email), now or utcnow()
    token = secrets.token_urlsafe(32)
    with uow:
        row = _human(uow, email)
        if row is None or row.disabled_at is not None:
            raise InvalidAgent(f"no enabled human agent {email}")
        links = orm.agent_password_links
        uow.session.execute(
            update(links).where(links.c.agent_id == row.id, links.c.ended_at.is_(None)).values(ended_at=now)
        )
        uow.session.execute(
            insert(links).values(
                agent_id=row.id,
                token_hash=_hash(token),
                created_at=now,
                expires_at=now + LINK_LIFETIME,
                ended_at=None,
            )
        )
        uow.commit()
    return token


def set_password(
    uow: SqlAlchemyUnitOfWork, token: str, password: str, *, now: datetime | None = None
) -> Agent:
    """Use a set-password link once: the agent's new password, its lockout cleared and its sessions ended.
    Commits. Raises `LinkUnusable`, `WeakPassword` (the link stays usable then)."""
    now = now or utcnow()
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise WeakPassword(f"A password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.")
    hashed = hash_password(password)  # before the transaction: it is slow on purpose
    links = orm.agent_password_links
    with uow:
        # The update is the claim: of two uses of one link at once, only one changes a row.
        claimed = uow.session.execute(
            update(links)
            .where(links.c.token_hash == _hash(token), links.c.ended_at.is_(None), links.c.expires_at > now)
            .values(ended_at=now)
        )
        if cast(CursorResult, claimed).rowcount != 1:
            raise LinkUnusable("This link is unknown, used or expired. Ask for a new one.")
        link = uow.session.execute(select(links.c.agent_id).where(links.c.token_hash == _hash(token))).one()
        row = uow.session.execute(select(orm.agents).where(orm.agents.c.id == link.agent_id)).one()
        if row.disabled_at is not None:
            raise LinkUnusable("This link is unknown, used or expired. Ask for a new one.")
        uow.session.execute(
            update(orm.agents)
            .where(orm.agents.c.id == row.id)
            .values(password_hash=hashed, failed_signins=0, locked_until=None)
        )
        _end_sessions(uow, row.id, now)
        uow.commit()
        return _agent(row)


def _end_sessions(uow: SqlAlchemyUnitOfWork, agent_id: int, now: datetime) -> None:
    sessions = orm.agent_sessions
    uow.session.execute(
        update(sessions)
        .where(sessions.c.agent_id == agent_id, sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )


def sign_in(
    uow: SqlAlchemyUnitOfWork, email: str, password: str, *, now: datetime | None = None
) -> tuple[Agent, str]:
    """The agent and a new session token, for the right password of an enabled, unlocked human agent.
    Commits. Raises `SignInRefused` (the same message whatever the reason, so it tells no one which
    emails exist or that a lock is on)."""
    now = now or utcnow()
    refused = SignInRefused("That email and password did not work, or sign-in is locked for a while.")
    try:
        email = _normalized_email(email)
    except InvalidAgent:
        raise refused from None
    with uow:
        row = _human(uow, email)
        usable = row is not None and row.disabled_at is None and row.password_hash is not None
        # Verify even when it cannot succeed, so the time taken does not tell which emails exist.
        matches = verify_password(password, row.password_hash if usable else _DUMMY_HASH)
        if not usable:
            raise refused
        if row.locked_until is not None and row.locked_until > now:
            raise refused  # the lock holds even for the right password
        if not matches:
            # Counted in the database (`failed_signins + 1`), not from the value read above: guesses sent in
            # parallel each count, so they cannot share one failure between them.
            agent_row = orm.agents.c
            uow.session.execute(
                update(orm.agents)
                .where(agent_row.id == row.id)
                .values(failed_signins=agent_row.failed_signins + 1)
            )
            failures = uow.session.execute(
                select(agent_row.failed_signins).where(agent_row.id == row.id)
            ).scalar_one()
            if failures >= MAX_FAILED_SIGNINS:
                uow.session.execute(
                    update(orm.agents)
                    .where(agent_row.id == row.id)
                    .values(failed_signins=0, locked_until=now + LOCKOUT)
                )
            uow.commit()
            raise refused
        token = secrets.token_urlsafe(32)
        uow.session.execute(
            update(orm.agents).where(orm.agents.c.id == row.id).values(failed_signins=0, locked_until=None)
        )
        uow.session.execute(
            insert(orm.agent_sessions).values(
                agent_id=row.id,
                token_hash=_hash(token),
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
                ended_at=None,
            )
        )
        uow.commit()
        return _agent(row), token


def session_agent(uow: SqlAlchemyUnitOfWork, token: str, *, now: datetime | None = None) -> Agent | None:
    """The enabled agent of a live session, or None (unknown, ended, expired, or the agent disabled)."""
    if not token:
        return None
    now = now or utcnow()
    sessions = orm.agent_sessions
    with uow:
        row = uow.session.execute(
            select(orm.agents, sessions.c.token_hash)
            .join(sessions, sessions.c.agent_id == orm.agents.c.id)
            .where(
                sessions.c.token_hash == _hash(token),
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > now,
                orm.agents.c.disabled_at.is_(None),
            )
        ).first()
    if row is None or not hmac.compare_digest(row.token_hash, _hash(token)):
        return None
    return _agent(row)


def end_session(uow: SqlAlchemyUnitOfWork, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the session stops working. Commits."""
    now = now or utcnow()
    sessions = orm.agent_sessions
    with uow:
        uow.session.execute(
            update(sessions)
            .where(sessions.c.token_hash == _hash(token), sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        uow.commit()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from its secret, so a page of another origin cannot know it, and
    it needs no storage (the synchronizer-token pattern without a table)."""
    return hmac.new(session_token.encode(), b"keymedic-agent-csrf", hashlib.sha256).hexdigest()
