"""Alembic environment: the URL comes from the app's settings (`KEYMEDIC_DATABASE_URL`), like
full-stack-fastapi-template's `app/alembic/env.py`, never from alembic.ini.

A caller may hand in a connection (`config.attributes["connection"]`, pytest-alembic does) or a URL
(`config.attributes["database_url"]`, `bot.store.migrate`). SQLite migrations run in batch mode, because
SQLite can alter a table only by rebuilding it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection, Engine

from bot.config import load_settings
from bot.store.db import migration_connection
from bot.store.orm import metadata

config = context.config
target_metadata = metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else load_settings().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _configure(given)
        return
    if isinstance(given, Engine):  # pytest-alembic hands in its engine
        with given.begin() as connection:
            _configure(connection)
        return
    with migration_connection(_database_url()) as connection:
        _configure(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
