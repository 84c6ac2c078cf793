"""Proactive outreach on real SQLite and PostgreSQL, against a stand-in for Rasa's HTTP API over real HTTP:
the once-a-day rule (also under concurrency), the choice of conversation, a paused or busy conversation left
alone, Rasa down (retried, never doubled), and failures that are not about the key. The real Rasa server is
in `tests/e2e/test_outreach_e2e.py`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from bot.handoff.rasa import RasaConversations
from bot.launcher import free_port
from bot.outreach.repository import PENDING, SENT, SKIPPED, OutreachRecord, OutreachRepository
from bot.outreach.service import INTENT, OutreachClaim, OutreachRetry, claim_outreach, run_outreach
from bot.secret import Secret
from bot.store import services
from bot.store.crypto import new_key_entry, parse_key_ring
from bot.store.db import Database
from bot.store.model import SyncStatus
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials
from tests.support.web import serve

pytestmark = pytest.mark.integration

KEYS = parse_key_ring(new_key_entry("outreach"))
REJECTED = "KeyRejected: kraken rejected the API key [EAPI:Invalid key]: the key was revoked"
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


# -- a stand-in for Rasa's conversation endpoints -----------------------------------------------------------


@dataclass
class StandInRasa:
    """Serves a tracker state per conversation (`known`; any other is a conversation nobody opened),
    records each trigger_intent and adds it to that conversation's events, as Rasa does."""

    url: str = ""
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    triggers: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    down: bool = False
    lose_trigger_answer: bool = False  # apply the trigger, then answer 500 (the answer got lost)

    async def tracker(self, request: web.Request) -> web.Response:
        if self.down:
            return web.json_response({"message": "down"}, status=503)
        conversation = request.match_info["conversation_id"]
        state = {
            "sender_id": conversation,
            "paused": False,
            "active_loop": {},
            "latest_input_channel": None,
            "latest_event_time": time.time(),
            **self.known.get(conversation, {}),
        }
        if request.query.get("include_events") == "ALL":
            state["events"] = self.events.get(conversation, [])
        else:
            state["events"] = None
        return web.json_response(state)

    async def trigger(self, request: web.Request) -> web.Response:
        if self.down:
            return web.json_response({"message": "down"}, status=503)
        conversation = request.match_info["conversation_id"]
        body = await request.json()
        self.triggers.append((conversation, body, dict(request.query)))
        entities = [{"entity": k, "value": v} for k, v in body.get("entities", {}).items()]
        self.events.setdefault(conversation, []).append(
            {
                "event": "user",
                "text": f"EXTERNAL: {body['name']}",
                "parse_data": {"intent": {"name": body["name"]}, "entities": entities},
            }
        )
        if self.lose_trigger_answer:
            return web.json_response({"message": "lost"}, status=500)
        return web.json_response({"tracker": {"sender_id": conversation}, "messages": [{"text": "offer"}]})


@pytest.fixture
def rasa() -> Iterator[StandInRasa]:
    stand_in = StandInRasa()
    app = web.Application()
    app.router.add_get("/conversations/{conversation_id}/tracker", stand_in.tracker)
    app.router.add_post("/conversations/{conversation_id}/trigger_intent", stand_in.trigger)
    with serve(app) as (url, _loop):
        stand_in.url = url
        yield stand_in


# -- data ----------------------------------------------------------------------------------------------------


@dataclass
class Olivia:
    """A user with two REST conversations and a Kraken wallet whose key the exchange refused."""

    database: Database
    wallet_id: int
    credential_id: int

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.database, KEYS)

    def failed_run(self, error: str = REJECTED, *, credential_id: int | None = None) -> int:
        run_id = services.request_sync(self.uow(), self.wallet_id, reason="scheduled")
        uow = self.uow()
        with uow:
            run = uow.sync_runs.get(run_id)
            assert run is not None
            run.status, run.error = SyncStatus.FAILED, error
            run.credential_id = credential_id or self.credential_id
            uow.commit()
        return run_id

    def rows(self) -> list[OutreachRecord]:
        uow = self.uow()
        with uow:
            return OutreachRepository(uow.session).for_wallet(self.wallet_id)


@pytest.fixture
def olivia(database: Database) -> Olivia:
    uow = SqlAlchemyUnitOfWork(database, KEYS)
    with uow:
        user = services.ensure_user(uow, "olivia")
        for conversation in ("olivia-old", "olivia-new", "olivia-never"):
            services.link_identity(uow, user, channel="rest", external_id=conversation)
        services.link_identity(uow, user, channel="slack", external_id="U123")
        user_id = user.id
        uow.commit()
    assert user_id is not None
    update = services.update_or_connect(
        SqlAlchemyUnitOfWork(database, KEYS),
        user_id=user_id,
        exchange="kraken",
        credentials=Credentials(api_key="OLIVIAKEY-0000-abcd", api_secret=Secret("olivia-secret-123456789")),
        diagnosis_passed=True,
    )
    uow = SqlAlchemyUnitOfWork(database, KEYS)
    with uow:  # the first sync of that key, done: only later runs fail
        run = uow.sync_runs.get(update.sync_run_id)
        assert run is not None
        run.status = SyncStatus.SUCCEEDED
        uow.commit()
    return Olivia(database, update.wallet_id, update.credential_id)


def _talked(rasa: StandInRasa, **latest: float) -> None:
    for conversation, moment in latest.items():
        rasa.known[conversation.replace("_", "-")] = {
            "latest_input_channel": "rest",
            "latest_event_time": moment,
        }


def _run(olivia: Olivia, rasa: StandInRasa, run_id: int, *, now: datetime = NOON) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        client = RasaConversations(rasa.url, timeout_s=5)
        try:
            return (await run_outreach(olivia.uow, client, run_id, clock=lambda: now)).to_dict()
        finally:
            await client.aclose()

    return asyncio.run(go())


# -- tests ---------------------------------------------------------------------------------------------------


def test_a_refused_key_is_offered_once_in_the_conversation_the_user_wrote_in_last(
    olivia: Olivia, rasa: StandInRasa
) -> None:
    _talked(rasa, olivia_old=1_700_000_000.0, olivia_new=1_700_000_500.0)

    result = _run(olivia, rasa, olivia.failed_run())

    assert result["outcome"] == "sent" and result["conversation_id"] == "olivia-new"
    [(conversation, body, query)] = rasa.triggers
    assert conversation == "olivia-new" and query["output_channel"] == "latest"
    assert body["name"] == INTENT
    assert body["entities"] == {
        "exchange": "kraken",
        "wallet_id": str(olivia.wallet_id),
        "exchange_name": "Kraken",
        "outreach_id": str(result["outreach_id"]),
    }
    [row] = olivia.rows()
    assert (row.status, row.conversation_id, row.raw_code, row.attempts) == (
        SENT,
        "olivia-new",
        "EAPI:Invalid key",
        1,
    )
    assert row.day == NOON.date() and row.sent_at == NOON


def test_a_second_failure_the_same_day_says_nothing_and_the_next_day_speaks_again(
    olivia: Olivia, rasa: StandInRasa
) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    assert _run(olivia, rasa, olivia.failed_run())["outcome"] == "sent"

    again = _run(olivia, rasa, olivia.failed_run(), now=NOON + timedelta(hours=11, minutes=59))
    assert again["outcome"] == "already_today"
    assert len(rasa.triggers) == 1

    tomorrow = _run(olivia, rasa, olivia.failed_run(), now=NOON + timedelta(hours=12))
    assert tomorrow["outcome"] == "sent" and len(rasa.triggers) == 2
    assert [row.day for row in olivia.rows()] == [NOON.date(), NOON.date() + timedelta(days=1)]


def test_racing_jobs_for_one_wallet_claim_the_day_once(olivia: Olivia) -> None:
    runs = [olivia.failed_run() for _ in range(8)]
    barrier = threading.Barrier(len(runs))

    def claim(run_id: int) -> object:
        barrier.wait()
        return claim_outreach(olivia.uow(), run_id, now=NOON)

    with ThreadPoolExecutor(len(runs)) as pool:
        results = list(pool.map(claim, runs))

    claims = [r for r in results if isinstance(r, OutreachClaim)]
    assert len(claims) == 1, results
    assert all(
        getattr(r, "outcome", None) in ("in_progress", "already_today") for r in results if r not in claims
    )
    assert len(olivia.rows()) == 1


def test_a_paused_conversation_is_left_to_the_person_from_support(olivia: Olivia, rasa: StandInRasa) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    rasa.known["olivia-new"]["paused"] = True

    result = _run(olivia, rasa, olivia.failed_run())

    assert result["outcome"] == "paused" and rasa.triggers == []
    [row] = olivia.rows()
    assert (row.status, row.detail, row.conversation_id) == (SKIPPED, "paused", "olivia-new")
    assert _run(olivia, rasa, olivia.failed_run())["outcome"] == "already_today"


def test_a_conversation_in_the_middle_of_a_form_is_not_interrupted(olivia: Olivia, rasa: StandInRasa) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    rasa.known["olivia-new"]["active_loop"] = {"name": "key_update_form"}

    assert _run(olivia, rasa, olivia.failed_run())["outcome"] == "busy"
    assert rasa.triggers == []


def test_a_user_who_never_opened_a_conversation_is_not_written_to(olivia: Olivia, rasa: StandInRasa) -> None:
    result = _run(olivia, rasa, olivia.failed_run())
    assert result["outcome"] == "no_conversation" and rasa.triggers == []
    assert olivia.rows()[0].detail == "no_conversation"


def test_rasa_down_leaves_the_outreach_pending_and_the_retry_sends_it_once(
    olivia: Olivia, rasa: StandInRasa
) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    run_id = olivia.failed_run()
    rasa.down = True
    with pytest.raises(OutreachRetry):
        _run(olivia, rasa, run_id)
    [row] = olivia.rows()
    assert (row.status, row.attempts, row.detail) == (PENDING, 1, "Rasa answered HTTP 503")

    rasa.down = False
    assert _run(olivia, rasa, run_id)["outcome"] == "sent"
    assert len(rasa.triggers) == 1 and olivia.rows()[0].attempts == 2


def test_a_trigger_whose_answer_was_lost_is_not_repeated(olivia: Olivia, rasa: StandInRasa) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    run_id = olivia.failed_run()
    rasa.lose_trigger_answer = True
    with pytest.raises(OutreachRetry):
        _run(olivia, rasa, run_id)

    rasa.lose_trigger_answer = False
    assert _run(olivia, rasa, run_id)["outcome"] == "sent"
    assert len(rasa.triggers) == 1  # the retry found its own trigger in the conversation


def test_rasa_unreachable_is_a_retry_too(olivia: Olivia) -> None:
    run_id = olivia.failed_run()
    nowhere = StandInRasa(url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(OutreachRetry):
        _run(olivia, nowhere, run_id)
    assert olivia.rows()[0].detail == "Rasa did not answer (ConnectError)"


@pytest.mark.parametrize(
    "error", ["RateLimited: Kraken is rate limiting this key", "ExchangeUnreachable: timed out", None]
)
def test_a_failure_that_is_not_about_the_key_says_nothing(
    olivia: Olivia, rasa: StandInRasa, error: str | None
) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    run_id = olivia.failed_run(error or REJECTED)
    if error is None:  # refused, but the run succeeded later on a retry of the same run: not failed any more
        uow = olivia.uow()
        with uow:
            run = uow.sync_runs.get(run_id)
            assert run is not None
            run.status = SyncStatus.SUCCEEDED
            uow.commit()
    assert _run(olivia, rasa, run_id)["outcome"] == "not_key_failure"
    assert rasa.triggers == [] and olivia.rows() == []


def test_a_key_replaced_since_the_failure_is_not_offered_again(olivia: Olivia, rasa: StandInRasa) -> None:
    _talked(rasa, olivia_new=1_700_000_000.0)
    run_id = olivia.failed_run()
    services.replace_credential(
        olivia.uow(),
        olivia.wallet_id,
        Credentials(api_key="OLIVIAKEY-1111-efgh", api_secret=Secret("olivia-secret-987654321")),
        diagnosis_passed=True,
    )
    assert _run(olivia, rasa, run_id)["outcome"] == "key_replaced"
    assert rasa.triggers == []


def test_a_conversation_id_rasa_cannot_address_is_passed_over(olivia: Olivia, rasa: StandInRasa) -> None:
    uow = olivia.uow()
    with uow:
        user = uow.users.by_handle("olivia")
        assert user is not None
        services.link_identity(uow, user, channel="rest", external_id="olivia on a typewriter")
        uow.commit()
    _talked(rasa, olivia_new=1_700_000_000.0)

    result = _run(olivia, rasa, olivia.failed_run())

    assert (result["outcome"], result["conversation_id"]) == ("sent", "olivia-new")
