"""The support channel's records (issue 16; docs/slack.md "The support channel"): which Slack user acts as
which agent, and which Slack thread belongs to which ticket.

A Slack user acts in the support channel only as the agent `keymedic agent link-slack` mapped it to; a
disabled agent's Slack user acts as nobody. Identities are `TEAM:USER` (`bot.store.slack.slack_identity`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from sqlalchemy import delete, insert, select

from bot.store import orm
from bot.store.agents import Agent, AgentNotFound, InvalidAgent, _agent, _by_email, _normalized_email
from bot.store.model import utcnow
from bot.store.slack import slack_identity
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "parse_slack_user",
    "link_slack_user",
    "agent_for_slack_user",
    "record_thread",
    "ticket_of_thread",
    "thread_of_ticket",
]

# Slack's team and user ids: upper-case letters and digits (T…, U… or W…).
_SLACK_ID: Final = re.compile(r"[A-Z0-9]{2,32}")


def parse_slack_user(value: str) -> tuple[str, str]:
    """`TEAM:USER` as (team id, user id). Raises `InvalidAgent`."""
    team, _, user = value.strip().partition(":")
    if not _SLACK_ID.fullmatch(team) or not _SLACK_ID.fullmatch(user):
        raise InvalidAgent("a Slack user is TEAM:USER, e.g. T0123ABCD:U0456EFGH")
    return team, user


def link_slack_user(
    uow: SqlAlchemyUnitOfWork, email: str, team_id: str, user_id: str, *, now: datetime | None = None
) -> Agent:
    """Map the Slack user to the enabled agent `email` (replacing any earlier mapping of that Slack user).
    Commits. Raises `AgentNotFound`."""
    email, now = _normalized_email(email), now or utcnow()
    identity = slack_identity(team_id, user_id)
    with uow:
        row = _by_email(uow, email)
        if row is None or row.disabled_at is not None:
            raise AgentNotFound(f"no enabled agent {email}")
        table = orm.agent_slack_users
        uow.session.execute(delete(table).where(table.c.slack_identity == identity))
        uow.session.execute(insert(table).values(slack_identity=identity, agent_id=row.id, created_at=now))
        uow.commit()
        return _agent(row)


def agent_for_slack_user(uow: SqlAlchemyUnitOfWork, team_id: str, user_id: str) -> Agent | None:
    """The enabled agent this Slack user acts as; None for an unmapped Slack user or a disabled agent."""
    table = orm.agent_slack_users
    with uow:
        row = uow.session.execute(
            select(orm.agents)
            .join(table, table.c.agent_id == orm.agents.c.id)
            .where(
                table.c.slack_identity == slack_identity(team_id, user_id), orm.agents.c.disabled_at.is_(None)
            )
        ).first()
        return _agent(row) if row is not None else None


def record_thread(
    uow: SqlAlchemyUnitOfWork, ticket_id: int, channel: str, thread_ts: str, *, now: datetime | None = None
) -> None:
    """Note that the message `thread_ts` in `channel` is the ticket's notification (a thread root). Commits;
    recording the same thread again changes nothing."""
    table = orm.support_threads
    with uow:
        known = uow.session.execute(
            select(table.c.id).where(table.c.channel == channel, table.c.thread_ts == thread_ts)
        ).first()
        if known is None:
            uow.session.execute(
                insert(table).values(
                    ticket_id=ticket_id, channel=channel, thread_ts=thread_ts, created_at=now or utcnow()
                )
            )
        uow.commit()


def ticket_of_thread(uow: SqlAlchemyUnitOfWork, channel: str, thread_ts: str) -> int | None:
    """The ticket whose notification is the root of this thread; None for any other thread."""
    table = orm.support_threads
    with uow:
        row = uow.session.execute(
            select(table.c.ticket_id).where(table.c.channel == channel, table.c.thread_ts == thread_ts)
        ).first()
        return int(row.ticket_id) if row is not None else None


def thread_of_ticket(uow: SqlAlchemyUnitOfWork, ticket_id: int, channel: str) -> str | None:
    """The `thread_ts` of the ticket's latest notification in `channel`; None when none was posted there."""
    table = orm.support_threads
    with uow:
        row = uow.session.execute(
            select(table.c.thread_ts)
            .where(table.c.ticket_id == ticket_id, table.c.channel == channel)
            .order_by(table.c.id.desc())
            .limit(1)
        ).first()
        return str(row.thread_ts) if row is not None else None
