"""the windowed tracker store's additions: the session-start index and the snapshot table

Revision ID: t0001
Revises:
Create Date: 2026-12-07 14:40:00

`keymedic_events_by_sender_and_type` (sender, type, id) on Rasa's `events` table: each retrieve of the
windowed store (rasa_plugins/tracker_store.py) looks up the newest `session_started` of a sender, which
Rasa's index on the sender alone turns into a walk over the whole conversation (1 ms at turn 300, growing;
0.006 ms with this index, docs/bench.md). `keymedic_tracker_snapshots`: the state at each turn's end that a
window starts from.

Rasa creates `events` when its store first starts (`create_all`, which skips a table that exists), so this
migration may run before Rasa ever did: then it creates `events` exactly as Rasa 3.6.21 declares it
(`SQLTrackerStore.SQLEvent`; tests/integration/tracker_store/test_tracker_migrations.py compares the two on
SQLite and PostgreSQL). Before this migration the store made the index and the table at start-up, so a
deployment of that time already has them: each step checks first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSION_START_INDEX = "keymedic_events_by_sender_and_type"
SNAPSHOTS = "keymedic_tracker_snapshots"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("events"):
        op.create_table(
            "events",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("sender_id", sa.String(length=255), nullable=False),
            sa.Column("type_name", sa.String(length=255), nullable=False),
            sa.Column("timestamp", sa.Float()),
            sa.Column("intent_name", sa.String(length=255)),
            sa.Column("action_name", sa.String(length=255)),
            sa.Column("data", sa.Text()),
        )
        op.create_index("ix_events_sender_id", "events", ["sender_id"])
    if SESSION_START_INDEX not in {
        index["name"] for index in sa.inspect(op.get_bind()).get_indexes("events")
    }:
        op.create_index(SESSION_START_INDEX, "events", ["sender_id", "type_name", "id"])
    if not inspector.has_table(SNAPSHOTS):
        op.create_table(
            SNAPSHOTS,
            sa.Column("sender_id", sa.String(length=255), primary_key=True),
            # The id, in Rasa's `events` table, of the `action_listen` the state was taken at.
            sa.Column("event_id", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("state", sa.Text(), nullable=False),
        )


def downgrade() -> None:
    # Rasa's `events` table stays: it holds the conversations, and Rasa would make it again anyway.
    op.drop_table(SNAPSHOTS)
    op.drop_index(SESSION_START_INDEX, table_name="events")
