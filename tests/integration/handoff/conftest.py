"""Hand-off integration fixtures: databases (SQLite and PostgreSQL, as in `tests/integration/store`), a local
webhook receiver that fails on purpose, a stand-in for Rasa's HTTP API, and a way to open real tickets.

Servers are small aiohttp apps on free ports, each in a thread with its own event loop, waited for with a
deadline.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.assistant import SupportDesk
from bot.config import Settings, load_settings
from bot.store import services
from bot.store.crypto import new_key_entry, parse_key_ring
from bot.store.db import Database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from tests.support.web import serve

START_TIMEOUT_S = 10.0
KEY_ENTRY = new_key_entry("handoff")
DELIVERY_HEADER = "X-KeyMedic-Delivery-Id"


# -- databases -----------------------------------------------------------------------------------------------


@pytest.fixture
def uow_factory(database: Database) -> Any:
    keys = parse_key_ring(KEY_ENTRY)
    return lambda: SqlAlchemyUnitOfWork(database, keys)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return replace(
        load_settings(),
        database_url=database_url,
        encryption_keys=KEY_ENTRY,
        var_dir=tmp_path / "var",
        web_public_url="https://keymedic.example",
    )


# -- tickets -------------------------------------------------------------------------------------------------

DIAGNOSIS = {
    "exchange": "kraken",
    "all_passed": False,
    "items": [
        {"item": "format", "status": "pass", "fix": None, "raw_code": None, "detail": None},
        {"item": "key_known", "status": "pass", "fix": None, "raw_code": None, "detail": None},
        {"item": "no_ip_restriction", "status": "fail", "fix": "…", "raw_code": "EGeneral:Permission denied"},
        {"item": "has_activity", "status": "unknown", "fix": None, "raw_code": None, "detail": None},
    ],
    "unavailable": None,
    "elapsed_s": 0.4,
}


@dataclass
class Tickets:
    """Opens tickets the way the hand-off action does (`SupportDesk.open_ticket`), for a user with a Kraken
    wallet whose last live test failed."""

    desk: SupportDesk
    uow_factory: Any
    wallet_id: int
    nudges: list[int] = field(default_factory=list)

    async def open(self, conversation_id: str, reason: str = "key still failing after checks") -> int:
        return await self.desk.open_ticket(
            "rest",
            "alice",
            conversation_id,
            reason=reason,
            wallet_id=self.wallet_id,
            checklist={"checklist_activated": True},
        )


@pytest.fixture
def tickets(settings: Settings, uow_factory: Any) -> Tickets:
    uow = uow_factory()
    with uow:
        user = services.ensure_user(uow, "alice", display_name="Alice Example")
        services.link_identity(uow, user, channel="rest", external_id="alice")
        assert user.id is not None
        wallet = services.get_or_create_wallet(uow, user_id=user.id, exchange="kraken")
        assert wallet.id is not None
        wallet_id = wallet.id
        uow.commit()
    services.record_diagnosis(
        uow_factory(), wallet_id=wallet_id, exchange="kraken", all_passed=False, outcome=DIAGNOSIS
    )
    nudges: list[int] = []
    desk = SupportDesk(settings, enqueue_resync=lambda _: None, enqueue_delivery=lambda: nudges.append(1))
    return Tickets(desk, uow_factory, wallet_id, nudges)


# -- servers -------------------------------------------------------------------------------------------------


class WebhookReceiver:
    """A support webhook that answers 500 to the first `failures` requests of each delivery id, then 200.

    Requests numbered in `hang_on` (per delivery id, from 1) wait until `release()` before answering 500:
    that is how a worker gets stopped in the middle of a delivery. It counts everything by delivery id.
    """

    def __init__(
        self, failures: int = 3, hang_on: frozenset[int] = frozenset(), delay_s: float = 0.0
    ) -> None:
        self.failures = failures
        self.hang_on = hang_on
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.requests: dict[str, list[int]] = defaultdict(list)  # delivery id -> status answered, in order
        self.bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.headers: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.hanging = threading.Event()
        self.url = ""
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def handle(self, request: web.Request) -> web.Response:
        delivery_id = request.headers.get(DELIVERY_HEADER, "")
        body = await request.json()
        with self.lock:
            number = len(self.requests[delivery_id]) + 1
            self.requests[delivery_id].append(0)  # answered below
            self.bodies[delivery_id].append(body)
            self.headers[delivery_id].append(dict(request.headers))
            self.in_flight[delivery_id] += 1
            self.max_in_flight[delivery_id] = max(
                self.max_in_flight[delivery_id], self.in_flight[delivery_id]
            )
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if number in self.hang_on:
                if self._release is None:
                    self._release = asyncio.Event()
                self.hanging.set()
                await self._release.wait()
            status = 500 if number <= self.failures else 200
            with self.lock:
                self.requests[delivery_id][number - 1] = status
            return web.Response(status=status, text="ok" if status == 200 else "helpdesk down")
        finally:
            with self.lock:
                self.in_flight[delivery_id] -= 1

    def release(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def accepted(self) -> dict[str, int]:
        """How many 200s each delivery id got."""
        with self.lock:
            return {key: statuses.count(200) for key, statuses in self.requests.items()}

    def statuses(self, delivery_id: str) -> list[int]:
        with self.lock:
            return list(self.requests[delivery_id])


@contextmanager
def run_receiver(receiver: WebhookReceiver) -> Iterator[WebhookReceiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    with serve(app) as (url, loop):
        receiver.url, receiver._loop = f"{url}/hook", loop
        try:
            yield receiver
        finally:
            receiver.release()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with run_receiver(WebhookReceiver(failures=3)) as running:
        yield running


@dataclass
class FakeRasa:
    """Stands in for Rasa's HTTP API: records every request; serves `events` as every conversation's tracker;
    answers `status` to appends."""

    url: str = ""
    status: int = 200
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def append(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "json": await request.json(),
            }
        )
        return web.json_response({"sender_id": request.match_info["cid"]}, status=self.status)

    async def tracker(self, request: web.Request) -> web.Response:
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query)})
        if self.status != 200:
            return web.json_response({"error": "down"}, status=self.status)
        return web.json_response({"sender_id": request.match_info["cid"], "events": self.events})


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    rasa = FakeRasa()
    app = web.Application()
    app.router.add_post("/conversations/{cid}/tracker/events", rasa.append)
    app.router.add_get("/conversations/{cid}/tracker", rasa.tracker)
    app.router.add_post("/conversations/{cid}/trigger_intent", rasa.append)  # recorded the same way
    with serve(app) as (url, _):
        rasa.url = url
        yield rasa
