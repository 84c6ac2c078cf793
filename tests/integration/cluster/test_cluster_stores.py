"""The cluster's databases on the real PostgreSQL of this machine, and `keymedic cluster` refusing what it
cannot share (before it starts anything)."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from bot.cli import main
from bot.cluster.stores import ensure_postgres_database
from tests.support.store import drop_postgres_database, postgres_admin_url

pytestmark = pytest.mark.integration


def _exists(url: str) -> bool:
    engine = create_engine(postgres_admin_url(), poolclass=pool.NullPool, future=True)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": make_url(url).database}
            ).first()
            return found is not None
    finally:
        engine.dispose()


def test_a_missing_database_is_created_once_even_by_launchers_racing() -> None:
    url = make_url(postgres_admin_url()).set(database=f"keymedic_test_{secrets.token_hex(6)}_tracker")
    target = url.render_as_string(hide_password=False)
    try:
        assert not _exists(target)
        with ThreadPoolExecutor(4) as pool_:
            created = list(pool_.map(lambda _: ensure_postgres_database(target), range(4)))
        assert created.count(True) == 1 and _exists(target)
        assert ensure_postgres_database(target) is False
    finally:
        drop_postgres_database(target)


def test_the_cluster_refuses_a_sqlite_database_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", "sqlite:////srv/keymedic.db")
    assert main(["cluster"]) == 2
    out = capsys.readouterr().out
    assert "PostgreSQL" in out and "KEYMEDIC_DATABASE_URL" in out


def test_the_cluster_refuses_colliding_ports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/keymedic_x")
    monkeypatch.setenv("RASA_PORT", "6000")
    assert main(["cluster", "--replica-ports", "6000,6001"]) == 2
    assert "collide" in capsys.readouterr().out
