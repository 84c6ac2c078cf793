"""The tracker database's migration (`keymedic db upgrade`, bot/store/tracker_migrations): Rasa's `events`
table exactly as Rasa makes it when it is not there yet, KeyMedic's index and snapshot table whether or not it
is, recorded, idempotent; on SQLite and PostgreSQL. The windowed store refuses a database never migrated."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.store.migrate import tracker_revision, upgrade_tracker
from rasa_plugins.tracker_store import TrackerDatabaseNotMigrated, WindowedSQLTrackerStore
from tests.support.store import create_postgres_database, drop_postgres_database
from tests.support.tracker import load_domain, tracker_store_kwargs

pytestmark = pytest.mark.integration

INDEX = "keymedic_events_by_sender_and_type"
SNAPSHOTS = "keymedic_tracker_snapshots"


@pytest.fixture(scope="module")
def domain() -> Domain:
    return load_domain()


def _fresh_url(kind: str, tmp_path: Path, made: list[str]) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'tracker-{len(made)}.db'}"
    url = create_postgres_database(migrate_to=None)
    made.append(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A maker of empty tracker databases of one kind; PostgreSQL ones are dropped afterwards."""
    made: list[str] = []
    yield lambda: _fresh_url(request.param, tmp_path, made)
    for url in made:
        drop_postgres_database(url)


def _rasas_store(domain: Domain, url: str) -> SQLTrackerStore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy 2.0 deprecations inside Rasa
        return SQLTrackerStore(domain=domain, **tracker_store_kwargs(url))


def _schema(url: str) -> dict[str, Any]:
    """The `events` table as the database describes it: columns (name, type, nullable, primary key) and the
    indexes other than KeyMedic's."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        columns = [
            (
                c["name"],
                str(c["type"]),
                c["nullable"],
                c["name"] in inspector.get_pk_constraint("events")["constrained_columns"],
            )
            for c in inspector.get_columns("events")
        ]
        defaults = {c["name"]: c.get("default") for c in inspector.get_columns("events")}
        indexes = sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes("events")
            if i["name"] != INDEX
        )
        return {"columns": columns, "id_default": defaults["id"], "indexes": indexes}
    finally:
        engine.dispose()


def _names(url: str) -> tuple[set[str], set[str]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        return set(inspector.get_table_names()), {i["name"] for i in inspector.get_indexes("events")}
    finally:
        engine.dispose()


def test_on_an_empty_database_it_makes_rasas_events_table_as_rasa_would(domain: Domain, fresh: Any) -> None:
    ours, rasas = fresh(), fresh()
    upgrade_tracker(ours)
    _rasas_store(domain, rasas).engine.dispose()  # what Rasa makes on an empty database
    assert _schema(ours) == _schema(rasas)
    tables, indexes = _names(ours)
    assert {"events", SNAPSHOTS, "keymedic_tracker_version"} <= tables and INDEX in indexes
    assert tracker_revision(ours) == "t0001"


def test_rasas_own_store_works_on_the_table_the_migration_made(domain: Domain, fresh: Any) -> None:
    url = fresh()
    upgrade_tracker(url)
    store = _rasas_store(domain, url)
    tracker = DialogueStateTracker.from_events(
        "migrated",
        [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
         UserUttered("hello", {"name": "greet", "confidence": 1.0})],
    )  # fmt: skip
    try:
        asyncio.run(store.save(tracker))
        again = asyncio.run(store.retrieve("migrated"))
    finally:
        store.engine.dispose()
    assert again is not None and again.latest_message is not None and again.latest_message.text == "hello"


def test_on_a_table_rasa_made_it_adds_the_index_and_keeps_the_conversations(
    domain: Domain, fresh: Any
) -> None:
    url = fresh()
    store = _rasas_store(domain, url)
    asyncio.run(store.save(DialogueStateTracker.from_events("kept", [ActionExecuted("action_listen")])))
    store.engine.dispose()
    assert INDEX not in _names(url)[1]
    upgrade_tracker(url)
    upgrade_tracker(url)  # again: recorded, nothing to do
    tables, indexes = _names(url)
    assert INDEX in indexes and SNAPSHOTS in tables and tracker_revision(url) == "t0001"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            assert (
                connection.execute(sa.text("SELECT count(*) FROM events WHERE sender_id = 'kept'")).scalar()
                == 1
            )
    finally:
        engine.dispose()


def test_a_database_the_store_set_up_at_start_before_the_migration_existed_is_taken_over(fresh: Any) -> None:
    # Before this migration the windowed store made its index and table at start-up, unrecorded.
    url = fresh()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    statements = [
        "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
        "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
        "action_name VARCHAR(255), data TEXT)",
        f"CREATE INDEX {INDEX} ON events (sender_id, type_name, id)",
        f"CREATE TABLE {SNAPSHOTS} (sender_id VARCHAR(255), event_id INTEGER, state TEXT NOT NULL, "
        "PRIMARY KEY (sender_id, event_id))",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()
    assert tracker_revision(url) is None
    upgrade_tracker(url)
    assert tracker_revision(url) == "t0001"


def test_the_windowed_store_refuses_a_database_never_migrated(domain: Domain, tmp_path: Path) -> None:
    with pytest.raises(TrackerDatabaseNotMigrated, match="keymedic db upgrade"):
        WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "never.db"))
