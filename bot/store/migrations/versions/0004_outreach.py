"""outreach: KeyMedic's own messages after a resync failed on the key, at most one per wallet and day

Revision ID: 0004
Revises: 0005
Create Date: 2026-11-26 12:20:00

Written at the same time as 0005 (Slack), which already revised 0003; following the note in 0005, the one that
landed second (this one) revises the other, so the history stays one line (`alembic heads` prints one head).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outreach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sync_run_id", sa.Integer(), nullable=True),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("raw_code", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("conversation_id", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_outreach_wallet_id_wallets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_outreach_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"],
            ["sync_runs.id"],
            name=op.f("fk_outreach_sync_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach")),
        # The once-a-day rule, held by the database: two jobs racing for one wallet cannot both insert.
        sa.UniqueConstraint("wallet_id", "day", name=op.f("uq_outreach_wallet_id_day")),
    )


def downgrade() -> None:
    op.drop_table("outreach")
