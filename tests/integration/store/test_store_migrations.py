"""pytest-alembic's built-in migration tests, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_alembic.tests import (  # noqa: F401  (collected as tests here)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Engine

from bot.store.migrate import alembic_config as build_alembic_config
from tests.support.store import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.integration


@pytest.fixture
def alembic_config() -> object:
    return build_alembic_config()


@pytest.fixture(params=["sqlite", "postgresql"])
def alembic_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(
            f"sqlite:///{tmp_path / 'migrations.db'}", poolclass=pool.NullPool, future=True
        )
        yield engine
        engine.dispose()
        return
    url = create_postgres_database(migrate_to=None)
    engine = create_engine(url, poolclass=pool.NullPool, future=True)
    yield engine
    engine.dispose()
    drop_postgres_database(url)
