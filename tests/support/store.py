"""Throw-away databases for tests and benchmarks: a migrated SQLite file, or a PostgreSQL database with a
random name that the caller drops. Schemas come from `alembic upgrade head`, never `create_all`.

`KEYMEDIC_TEST_POSTGRES_URL` names the server's maintenance database (default
`postgresql+psycopg2://postgres@127.0.0.1:5432/postgres`).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Engine, make_url

from bot.secret import Secret
from bot.store import migrate, orm, services
from bot.store.unit_of_work import AbstractUnitOfWork
from bot.types.credentials import Credentials

__all__ = [
    "postgres_admin_url",
    "create_postgres_database",
    "drop_postgres_database",
    "migrated_sqlite",
    "truncate_all",
    "kraken_wallet",
]


def postgres_admin_url() -> str:
    return os.environ.get(
        "KEYMEDIC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    )


def _admin_engine() -> Engine:
    return create_engine(
        postgres_admin_url(), poolclass=pool.NullPool, future=True, isolation_level="AUTOCOMMIT"
    )


def create_postgres_database(*, deadline_s: float = 10.0, migrate_to: str | None = "head") -> str:
    """Create a database with a random name (migrated to `migrate_to`) and return its URL. Raises after
    `deadline_s` when the server does not answer."""
    name = f"keymedic_test_{secrets.token_hex(6)}"
    engine = _admin_engine()
    give_up = time.monotonic() + deadline_s
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                break
            except Exception:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()
    url = make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    if migrate_to is not None:
        migrate.upgrade(url, migrate_to)
    return url


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    assert name is not None and name.startswith("keymedic_test_"), "only test databases are dropped"
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def migrated_sqlite(path: Path) -> str:
    """A SQLite file at `path`, migrated to head; returns its URL."""
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url


def truncate_all(engine: Engine) -> None:
    """Empty every KeyMedic table (between tests sharing one PostgreSQL database)."""
    names = ", ".join(f'"{table.name}"' for table in orm.metadata.sorted_tables)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(orm.metadata.sorted_tables):
                connection.execute(table.delete())


def kraken_wallet(
    uow: AbstractUnitOfWork, handle: str, api_key: str, api_secret: str
) -> services.CredentialUpdate:
    """`handle`'s Kraken wallet (the user made when new) with this key, tested and swapped in, as a key update
    leaves it: its first resync queued (`update.sync_run_id`). Commits."""
    with uow:
        user = services.ensure_user(uow, handle)
        uow.commit()
    assert user.id is not None
    return services.update_or_connect(
        uow,
        user_id=user.id,
        exchange="kraken",
        credentials=Credentials(api_key=api_key, api_secret=Secret(api_secret)),
        diagnosis_passed=True,
    )
