"""agents: support agents and automations, each with its own hashed API credentials

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:30:00

Written beside 0006 (Slack link codes) and landed after it, so it revises 0006: `alembic heads` stays one.
The rate limits of issue 15 keep no table: they live in Redis, or in a bounded memory store
(`bot.diagnosis.ratelimit`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('human', 'automation')", name=op.f("ck_agents_kind_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("email", name=op.f("uq_agents_email")),
    )
    op.create_table(
        "agent_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_credentials_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_credentials")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agent_credentials_token_hash")),
    )
    with op.batch_alter_table("agent_credentials") as batch:
        batch.create_index(batch.f("ix_agent_credentials_agent_id"), ["agent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agent_credentials") as batch:
        batch.drop_index(batch.f("ix_agent_credentials_agent_id"))
    op.drop_table("agent_credentials")
    op.drop_table("agents")
