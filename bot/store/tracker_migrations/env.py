"""Alembic environment of the tracker database: Rasa's tracker store (`Settings.tracker_store_url`: the local
SQLite file, or the cluster's PostgreSQL `<name>_tracker` database), not KeyMedic's own database.

Its revisions are recorded in `keymedic_tracker_version`, not Alembic's default `alembic_version`, so the two
histories never meet even when both live in one database. The URL comes from the caller
(`config.attributes["database_url"]`, `bot.store.migrate.upgrade_tracker`) or the settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bot.config import load_settings
from bot.store.db import migration_connection

VERSION_TABLE = "keymedic_tracker_version"

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else load_settings().tracker_store_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,  # the schema is Rasa's events table plus KeyMedic's additions, not an ORM's
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with migration_connection(_database_url()) as connection:
        _configure(connection)


if context.is_offline_mode():
    raise SystemExit("the tracker database's migrations inspect the database: run them online")
run_migrations_online()
