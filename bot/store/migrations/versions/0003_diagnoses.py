"""diagnoses: the outcome of each live key test

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "diagnoses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.String(length=255), nullable=True),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("all_passed", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_diagnoses_wallet_id_wallets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_diagnoses_credential_id_credentials"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnoses")),
    )
    with op.batch_alter_table("diagnoses") as batch:
        batch.create_index(batch.f("ix_diagnoses_credential_id"), ["credential_id"], unique=False)
        batch.create_index("ix_diagnoses_wallet_id_created_at", ["wallet_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("diagnoses") as batch:
        batch.drop_index("ix_diagnoses_wallet_id_created_at")
        batch.drop_index(batch.f("ix_diagnoses_credential_id"))
    op.drop_table("diagnoses")
