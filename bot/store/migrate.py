"""Alembic without an alembic.ini: the configuration is built here, from the migrations folder and the app's
settings (`bot.store.migrations/env.py` reads the URL).
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade", "current_revision"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config for KeyMedic's migrations; `database_url` overrides `KEYMEDIC_DATABASE_URL`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the database schema to `revision` (default: the newest)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str | None = None) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    from bot.config import load_settings

    engine = create_engine(database_url or load_settings().database_url, poolclass=pool.NullPool, future=True)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
