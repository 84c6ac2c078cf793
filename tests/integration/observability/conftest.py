"""A seeded KeyMedic database (SQLite and PostgreSQL, from tests/integration/conftest.py) with a tracker store
of the same dialect written by Rasa's own SQLTrackerStore."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bot.store.db import Database
from tests.integration.observability.seed import seed_keymedic, seed_tracker
from tests.support.store import create_postgres_database, drop_postgres_database


@pytest.fixture(scope="session")
def postgres_tracker_url() -> Iterator[str]:
    url = create_postgres_database(migrate_to=None)
    yield url
    drop_postgres_database(url)


@pytest.fixture
def tracker_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty tracker store of the same dialect as the KeyMedic database."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    url: str = request.getfixturevalue("postgres_tracker_url")
    engine = create_engine(url, future=True)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS events"))
    engine.dispose()
    return url


def rasa_store(url: str) -> object:
    from rasa.core.tracker_store import SQLTrackerStore

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SQLTrackerStore(dialect="sqlite", db=parsed.database)
    return SQLTrackerStore(
        dialect="postgresql", host=parsed.host, port=parsed.port, db=parsed.database, username=parsed.username
    )


@pytest.fixture
def seeded(database: Database, tracker_url: str) -> Iterator[tuple[Engine, Engine]]:
    """(tracker engine, KeyMedic engine), both holding the conversations of `seed.SESSIONS`."""
    store = rasa_store(tracker_url)
    asyncio.run(seed_tracker(store))
    store.engine.dispose()  # type: ignore[attr-defined]
    seed_keymedic(database.engine)
    tracker = create_engine(tracker_url, future=True)
    yield tracker, database.engine
    tracker.dispose()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Commands under test install KeyMedic's logging on the root logger; give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level, factory = list(root.handlers), root.level, logging.getLogRecordFactory()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.setLogRecordFactory(factory)
