"""Support agents and automations, and their API credentials (DESIGN §6, §8; docs/handoff.md "Agents").

Each agent (a person of the support team, or an automation such as a helpdesk integration) has its own
credentials for the agent API, and what it does is recorded under its identity — never under a name the
request chooses. A credential is `kma_` plus 32 random bytes, shown once when it is made; only its SHA-256 is
stored. A disabled agent's credentials stop working at once, and an agent is never deleted, so the tickets it
worked stay attributable.

AgentError
├── AgentExists    an agent with that email exists already
├── AgentNotFound  no agent with that email
└── InvalidAgent   an email, name or kind that cannot be used
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import insert, select, update

from bot.store import orm
from bot.store.model import utcnow
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "AgentError",
    "AgentExists",
    "AgentNotFound",
    "InvalidAgent",
    "Agent",
    "HUMAN",
    "AUTOMATION",
    "TOKEN_PREFIX",
    "MIN_TOKEN_BYTES",
    "LOCAL_OPERATOR_EMAIL",
    "ENV_AUTOMATION_EMAIL",
    "new_token",
    "add_agent",
    "issue_credential",
    "disable_agent",
    "list_agents",
    "authenticate",
    "ensure_agent_credential",
    "sync_env_credential",
]

HUMAN: Final = "human"
AUTOMATION: Final = "automation"
TOKEN_PREFIX: Final = "kma_"
# 32 random bytes: guessing one is hopeless, which is also why a plain SHA-256 (no stretching) may store it.
MIN_TOKEN_BYTES: Final = 32
# The agent a local run (`keymedic run`, the e2e stack) makes for whoever runs it; its credential is kept in
# var/keys/agent.token (`bot.launcher.local_agent_token`).
LOCAL_OPERATOR_EMAIL: Final = "local-operator@localhost"
LOCAL_OPERATOR_NAME: Final = "local-operator"
# The automation behind `KEYMEDIC_AGENT_TOKEN`, for a deployment whose helpdesk integration gets its
# credential from a secret store rather than from `keymedic agent add`.
ENV_AUTOMATION_EMAIL: Final = "env-automation@localhost"
ENV_AUTOMATION_NAME: Final = "automation (KEYMEDIC_AGENT_TOKEN)"
ENV_LABEL: Final = "env"
MAX_EMAIL_CHARS: Final = 255
MAX_NAME_CHARS: Final = 100


class AgentError(Exception):
    """Root of the agent services' errors. Messages hold emails and ids, never a credential."""


class AgentExists(AgentError):
    pass


class AgentNotFound(AgentError):
    pass


class InvalidAgent(AgentError):
    pass


@dataclass(frozen=True)
class Agent:
    """An agent as the rest of KeyMedic sees it. `identity` is what tickets record."""

    id: int
    email: str
    name: str
    kind: str
    disabled: bool
    created_at: datetime

    @property
    def identity(self) -> str:
        return self.email


def new_token() -> str:
    """A fresh agent credential."""
    return TOKEN_PREFIX + secrets.token_urlsafe(MIN_TOKEN_BYTES)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _agent(row: Any) -> Agent:
    return Agent(row.id, row.email, row.name, row.kind, row.disabled_at is not None, row.created_at)


def _normalized_email(email: str) -> str:
    email = email.strip().lower()
    if (
        not email
        or len(email) > MAX_EMAIL_CHARS
        or "@" not in email
        or not email.isprintable()
        or " " in email
    ):
        raise InvalidAgent("an agent's email must look like name@domain")
    return email


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise InvalidAgent(f"an agent's name must be 1 to {MAX_NAME_CHARS} printable characters")
    return name


def _by_email(uow: SqlAlchemyUnitOfWork, email: str) -> Any:
    return uow.session.execute(select(orm.agents).where(orm.agents.c.email == email)).first()


def _add_credential(uow: SqlAlchemyUnitOfWork, agent_id: int, token: str, label: str, now: datetime) -> None:
    uow.session.execute(
        insert(orm.agent_credentials).values(
            agent_id=agent_id, token_hash=_hash(token), label=label, created_at=now, revoked_at=None
        )
    )


def add_agent(
    uow: SqlAlchemyUnitOfWork, *, email: str, name: str, kind: str = HUMAN, now: datetime | None = None
) -> tuple[Agent, str]:
    """A new agent and its first credential, returned once (only its hash is kept). Commits.
    Raises `AgentExists`, `InvalidAgent`."""
    if kind not in (HUMAN, AUTOMATION):
        raise InvalidAgent(f"an agent's kind is {HUMAN} or {AUTOMATION}")
    email, name, now = _normalized_email(email), _checked_name(name), now or utcnow()
    token = new_token()
    with uow:
        if _by_email(uow, email) is not None:
            raise AgentExists(f"an agent {email} exists already")
        uow.session.execute(
            insert(orm.agents).values(email=email, name=name, kind=kind, disabled_at=None, created_at=now)
        )
        row = _by_email(uow, email)
        _add_credential(uow, row.id, token, "cli", now)
        uow.commit()
        return _agent(row), token


def issue_credential(uow: SqlAlchemyUnitOfWork, email: str, *, now: datetime | None = None) -> str:
    """A new credential for an enabled agent, with every earlier one revoked (a rotation). Commits.
    Raises `AgentNotFound` (also for a disabled agent: enabling one again is a deliberate act)."""
    email, now = _normalized_email(email), now or utcnow()
    with uow:
        row = _by_email(uow, email)
        if row is None or row.disabled_at is not None:
            raise AgentNotFound(f"no enabled agent {email}")
        _revoke(uow, row.id, now)
        token = new_token()
        _add_credential(uow, row.id, token, "cli", now)
        uow.commit()
        return token


def _revoke(uow: SqlAlchemyUnitOfWork, agent_id: int, now: datetime, *, label: str | None = None) -> None:
    condition = (orm.agent_credentials.c.agent_id == agent_id) & orm.agent_credentials.c.revoked_at.is_(None)
    if label is not None:
        condition &= orm.agent_credentials.c.label == label
    uow.session.execute(update(orm.agent_credentials).where(condition).values(revoked_at=now))


def disable_agent(uow: SqlAlchemyUnitOfWork, email: str, *, now: datetime | None = None) -> bool:
    """Disable an agent and revoke its credentials; False when it was disabled already. Commits.
    Raises `AgentNotFound`."""
    email, now = _normalized_email(email), now or utcnow()
    with uow:
        row = _by_email(uow, email)
        if row is None:
            raise AgentNotFound(f"no agent {email}")
        _revoke(uow, row.id, now)
        # Console sessions end too (issue 16): a disabled agent is signed out everywhere at once.
        uow.session.execute(
            update(orm.agent_sessions)
            .where(orm.agent_sessions.c.agent_id == row.id, orm.agent_sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
        if row.disabled_at is not None:
            uow.commit()
            return False
        uow.session.execute(update(orm.agents).where(orm.agents.c.id == row.id).values(disabled_at=now))
        uow.commit()
        return True


def list_agents(uow: SqlAlchemyUnitOfWork) -> list[Agent]:
    """Every agent, enabled or not, in the order they were added."""
    with uow:
        rows = uow.session.execute(select(orm.agents).order_by(orm.agents.c.id)).all()
        return [_agent(row) for row in rows]


def authenticate(uow: SqlAlchemyUnitOfWork, token: str, *, env_token: str = "") -> Agent | None:
    """The enabled agent this credential belongs to, or None (unknown, revoked, or its agent disabled).

    A credential that came from `KEYMEDIC_AGENT_TOKEN` counts only while it is still that variable's value
    (`env_token`): a secret removed from the environment stops working at once, on every replica, even
    before a start-up revokes its row."""
    if len(token.encode()) < MIN_TOKEN_BYTES:
        return None  # no credential is that short: skip the query
    digest = _hash(token)
    with uow:
        found = uow.session.execute(
            select(orm.agents, orm.agent_credentials.c.token_hash, orm.agent_credentials.c.label)
            .join(orm.agent_credentials, orm.agent_credentials.c.agent_id == orm.agents.c.id)
            .where(
                orm.agent_credentials.c.token_hash == digest,
                orm.agent_credentials.c.revoked_at.is_(None),
                orm.agents.c.disabled_at.is_(None),
            )
        ).first()
    # The lookup is by the hash of a 32-byte random token, so its timing tells nothing useful; the final
    # comparison is constant-time all the same, so no code path compares secrets with `==`.
    if found is None or not hmac.compare_digest(found.token_hash, digest):
        return None
    if found.label == ENV_LABEL and not hmac.compare_digest(digest, _hash(env_token)):
        return None
    return _agent(found)


def ensure_agent_credential(
    uow: SqlAlchemyUnitOfWork,
    *,
    email: str,
    name: str,
    kind: str,
    token: str,
    label: str,
    now: datetime | None = None,
) -> Agent:
    """Make sure the agent exists and `token` is its only live credential with this `label` (the local run's
    and the environment's credentials are re-asserted on every start). A disabled agent stays disabled: an
    operator's `keymedic agent disable` wins over a start-up. Commits."""
    if len(token.encode()) < MIN_TOKEN_BYTES:
        raise InvalidAgent(f"an agent credential must be at least {MIN_TOKEN_BYTES} bytes")
    email, now = _normalized_email(email), now or utcnow()
    with uow:
        row = _by_email(uow, email)
        if row is None:
            uow.session.execute(
                insert(orm.agents).values(
                    email=email, name=_checked_name(name), kind=kind, disabled_at=None, created_at=now
                )
            )
            row = _by_email(uow, email)
        current = uow.session.execute(
            select(orm.agent_credentials.c.id).where(
                orm.agent_credentials.c.agent_id == row.id,
                orm.agent_credentials.c.token_hash == _hash(token),
                orm.agent_credentials.c.revoked_at.is_(None),
            )
        ).first()
        if current is None:
            _revoke(uow, row.id, now, label=label)
            _add_credential(uow, row.id, token, label, now)
        uow.commit()
        return _agent(row)


def sync_env_credential(
    uow: SqlAlchemyUnitOfWork, token: str, *, now: datetime | None = None
) -> Agent | None:
    """Bring the `KEYMEDIC_AGENT_TOKEN` automation in line with the environment: its credential is this
    token, or none at all once the variable is gone (a removed secret must stop working). Commits.
    Raises `InvalidAgent` for a token shorter than `MIN_TOKEN_BYTES`."""
    now = now or utcnow()
    if token:
        return ensure_agent_credential(
            uow,
            email=ENV_AUTOMATION_EMAIL,
            name=ENV_AUTOMATION_NAME,
            kind=AUTOMATION,
            token=token,
            label=ENV_LABEL,
            now=now,
        )
    with uow:
        row = _by_email(uow, ENV_AUTOMATION_EMAIL)
        if row is not None:
            _revoke(uow, row.id, now, label=ENV_LABEL)
            uow.commit()
    return None
