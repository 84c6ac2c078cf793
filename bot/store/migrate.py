"""Alembic without an alembic.ini: the configuration is built here, from the migrations folder and the app's
settings (`bot.store.migrations/env.py` reads the URL).

Two databases, two histories: KeyMedic's own (`migrations/`, recorded in `alembic_version`) and Rasa's tracker
store (`tracker_migrations/`, recorded in `keymedic_tracker_version`: the windowed store's index on Rasa's
`events` table and its snapshot table). `keymedic db upgrade` and every start (`bot.demo.prepare_database`)
run both, so Rasa never serves from a tracker database the windowed store does not fit.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

__all__ = [
    "MIGRATIONS_DIR",
    "TRACKER_MIGRATIONS_DIR",
    "alembic_config",
    "upgrade",
    "current_revision",
    "upgrade_tracker",
    "tracker_revision",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
TRACKER_MIGRATIONS_DIR = Path(__file__).resolve().parent / "tracker_migrations"
TRACKER_VERSION_TABLE = "keymedic_tracker_version"  # tracker_migrations/env.py records revisions there


def alembic_config(database_url: str | None = None, *, tracker: bool = False) -> Config:
    """An Alembic config for KeyMedic's migrations (the tracker database's with `tracker`); `database_url`
    overrides the settings' URL."""
    config = Config()
    config.set_main_option("script_location", str(TRACKER_MIGRATIONS_DIR if tracker else MIGRATIONS_DIR))
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


def upgrade_tracker(tracker_url: str | None = None, revision: str = "head") -> None:
    """Bring the tracker database (default: `Settings.tracker_store_url`) to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(tracker_url, tracker=True), revision)


def tracker_revision(tracker_url: str | None = None) -> str | None:
    """The revision the tracker database is at, or None before its first migration."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    from bot.config import load_settings

    url = tracker_url or load_settings().tracker_store_url
    engine = create_engine(url, poolclass=pool.NullPool, future=True)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": TRACKER_VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()
