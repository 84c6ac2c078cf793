"""slack link codes: a Slack link is completed by the Slack user sending the code the web page showed

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07 11:30:00

The newest migration was 0004 (the history is 0003 -> 0005 -> 0004, see 0004's note), so this one revises
0004 and `alembic heads` still prints one head.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("slack_identity", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_slack_link_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_link_codes")),
    )
    with op.batch_alter_table("slack_link_codes") as batch:
        batch.create_index(batch.f("ix_slack_link_codes_slack_identity"), ["slack_identity"], unique=False)
        batch.create_index(batch.f("ix_slack_link_codes_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_link_codes") as batch:
        batch.drop_index(batch.f("ix_slack_link_codes_expires_at"))
        batch.drop_index(batch.f("ix_slack_link_codes_slack_identity"))
    op.drop_table("slack_link_codes")
