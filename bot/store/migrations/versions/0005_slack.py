"""slack: deliveries already acted on, and one-time account links

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26 12:00:00

`down_revision` is the newest migration there was when this was written (0003). The outreach migration
(0004), written at the same time, landed second and revises this one, so the history is one line:
0003 -> 0005 -> 0004 (`alembic heads` prints one head).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_events",
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_key", name=op.f("pk_slack_events")),
    )
    with op.batch_alter_table("slack_events") as batch:
        batch.create_index(batch.f("ix_slack_events_received_at"), ["received_at"], unique=False)
    op.create_table(
        "slack_link_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("slack_identity", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_slack_link_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_link_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_slack_link_tokens_token_hash")),
    )
    with op.batch_alter_table("slack_link_tokens") as batch:
        batch.create_index(batch.f("ix_slack_link_tokens_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_link_tokens") as batch:
        batch.drop_index(batch.f("ix_slack_link_tokens_expires_at"))
    op.drop_table("slack_link_tokens")
    with op.batch_alter_table("slack_events") as batch:
        batch.drop_index(batch.f("ix_slack_events_received_at"))
    op.drop_table("slack_events")
