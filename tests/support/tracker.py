"""Rasa's side of the tests that run a tracker store directly: the project's domain, and tracker databases
as Rasa's `SQLTrackerStore` takes them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rasa.shared.core.domain import Domain
from sqlalchemy.engine import make_url

from bot.config import PROJECT_ROOT
from bot.store.migrate import upgrade_tracker
from tests.support.store import create_postgres_database, drop_postgres_database

__all__ = ["load_domain", "tracker_store_kwargs", "postgres_tracker_database"]


def load_domain() -> Domain:
    """The project's `domain.yml`, without the slot auto-fill warning Rasa gives for every 3.x domain."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Slot auto-fill", category=UserWarning)
        return Domain.load(str(PROJECT_ROOT / "domain.yml"))


def tracker_store_kwargs(url: str) -> dict[str, Any]:
    """`SQLTrackerStore`'s connection arguments for a database URL (SQLite or PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"dialect": "sqlite", "db": parsed.database}
    return {"dialect": "postgresql", "host": parsed.host, "port": parsed.port, "db": parsed.database,
            "username": parsed.username, "password": parsed.password}  # fmt: skip


@contextmanager
def postgres_tracker_database() -> Iterator[str]:
    """A fresh PostgreSQL database migrated as `keymedic db upgrade` migrates the tracker database before
    Rasa starts; dropped when the block ends."""
    url = create_postgres_database(migrate_to=None)
    try:
        upgrade_tracker(url)
        yield url
    finally:
        drop_postgres_database(url)
