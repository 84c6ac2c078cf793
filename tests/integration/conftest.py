"""Databases for every integration test that needs one: each such test runs on SQLite and on PostgreSQL.

The PostgreSQL database has a random name, is created and migrated (`alembic upgrade head`) once per test
run and dropped at its end; tests empty it before they start. Each SQLite test gets its own copy of a
migrated file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox.server import serve_in_thread
from bot.store.crypto import KeyRing
from bot.store.db import Database, create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from tests.support.redis import redis_namespace
from tests.support.store import (
    create_postgres_database,
    drop_postgres_database,
    migrated_sqlite,
    truncate_all,
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        url = create_postgres_database()
    except Exception as exc:
        pytest.fail(f"PostgreSQL never came up: {type(exc).__name__}")
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "keymedic.db"
    migrated_sqlite(path)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "keymedic.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    database = create_database(url)
    truncate_all(database.engine)
    database.dispose()
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = create_database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing({"k1": os.urandom(32)}, current="k1")


@pytest.fixture
def uow(database: Database, keys: KeyRing) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database, keys)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis key prefix of this test's own, emptied when it ends (tests/support/redis.py)."""
    with redis_namespace() as name:
        yield name


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """The exchange sandbox on a free port, for the module (a module that needs other settings, such as a
    bigger history, defines its own)."""
    with serve_in_thread() as url:
        yield url
