"""agent slack users: the Slack support channel as an agent surface (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:00:00

`agent_slack_users` maps a Slack user (`TEAM:USER`) to the agent it acts as, so a reply or a button click in
the support channel is recorded under that agent. `support_threads` ties each ticket notification posted to
the support channel (its channel and `ts`, the thread's root) to its ticket.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_slack_users",
        sa.Column("slack_identity", sa.String(length=255), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_slack_users_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("slack_identity", name=op.f("pk_agent_slack_users")),
    )
    with op.batch_alter_table("agent_slack_users") as batch:
        batch.create_index(batch.f("ix_agent_slack_users_agent_id"), ["agent_id"], unique=False)
    op.create_table(
        "support_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_support_threads_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_threads")),
        sa.UniqueConstraint("channel", "thread_ts", name=op.f("uq_support_threads_channel_thread_ts")),
    )
    with op.batch_alter_table("support_threads") as batch:
        batch.create_index(batch.f("ix_support_threads_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("support_threads") as batch:
        batch.drop_index(batch.f("ix_support_threads_ticket_id"))
    op.drop_table("support_threads")
    with op.batch_alter_table("agent_slack_users") as batch:
        batch.drop_index(batch.f("ix_agent_slack_users_agent_id"))
    op.drop_table("agent_slack_users")
