"""The real web app on a free port, over real HTTP, on SQLite and on PostgreSQL.

Databases as in `tests/integration/store`: PostgreSQL created and migrated once per run (emptied before each
test), SQLite a copy of a migrated file per test. The app runs in a thread with its own event loop; its clock
is the test's, and its `identify` reads the `X-Test-User` header, standing in for the widget's verified JWT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from bot.config import load_settings
from bot.store import services
from bot.store.crypto import KeyRing
from bot.store.db import Database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web.app import build_app
from tests.support.clock import FakeWallClock
from tests.support.web import serve_web_app


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


async def header_identity(request: web.Request) -> int | None:
    """The JWT seam, for tests: the user the request says it comes from."""
    raw = request.headers.get("X-Test-User")
    return int(raw) if raw else None


@dataclass
class World:
    """The served app and what the tests post into: a user with a Kraken and an OKX wallet, a second user."""

    url: str
    uow: SqlAlchemyUnitOfWork
    clock: FakeWallClock
    user_id: int
    other_user_id: int
    kraken_wallet: int
    okx_wallet: int

    def token(self, wallet_id: int | None = None, *, conversation_id: str = "conv-1") -> str:
        from bot.intake import issue_intake_token

        return issue_intake_token(
            self.uow,
            user_id=self.user_id,
            conversation_id=conversation_id,
            wallet_id=wallet_id or self.kraken_wallet,
            now=self.clock(),
        )


@pytest.fixture
def world(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, clock: FakeWallClock
) -> Iterator[World]:
    with uow:
        user = services.ensure_user(uow, "alice")
        other = services.ensure_user(uow, "mallory")
        assert user.id is not None and other.id is not None
        kraken = services.get_or_create_wallet(uow, user_id=user.id, exchange="kraken")
        okx = services.get_or_create_wallet(uow, user_id=user.id, exchange="okx")
        assert kraken.id is not None and okx.id is not None
        ids = (user.id, other.id, kraken.id, okx.id)
        uow.commit()
    app = build_app(
        load_settings(),
        uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys),
        identify=header_identity,
        clock=clock,
    )
    with serve_web_app(app) as url:
        yield World(url, uow, clock, *ids)
