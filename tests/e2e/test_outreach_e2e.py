"""Proactive outreach over the real servers: the demo user's Kraken key is revoked on the exchange (the
sandbox), its resync runs in the stack's worker and fails on the key, and KeyMedic opens the user's
conversation itself through Rasa's trigger_intent API — once; a second failure the same day says nothing; a
"yes" starts the key update for that wallet."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from bot.config import PROJECT_ROOT
from bot.outreach.repository import SENT, OutreachRecord, OutreachRepository
from bot.sandbox.scenarios import credentials_for
from bot.store import services
from bot.store.crypto import load_key_ring
from bot.store.db import Database, create_database
from bot.store.model import SyncStatus
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials
from tests.e2e.conftest import RasaStack
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

DEMO = "demo"
OFFER = "Your Kraken wallet stopped syncing"
WAIT_S = 90.0
T = TypeVar("T")


def _uow(stack: RasaStack, database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database, load_key_ring(stack.settings))


def _enqueue_resync(stack: RasaStack, sync_run_id: int) -> None:
    """Queue the resync job into the stack's own queue, as the key update does, from another process."""
    code = "import sys; from bot.jobs import enqueue_resync; enqueue_resync(int(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", code, str(sync_run_id)],
        env=stack.env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
    )


def _offers(stack: RasaStack, conversation: str) -> list[dict[str, Any]]:
    tracker = stack.api(
        "GET", f"/conversations/{conversation}/tracker", params={"include_events": "ALL"}
    ).json()
    return [e for e in tracker["events"] if e.get("event") == "bot" and OFFER in str(e.get("text"))]


def _eventually(what: str, check: Callable[[], T]) -> T:
    return eventually(check, what, timeout=WAIT_S, interval=0.5)


def _demo_wallet(stack: RasaStack, database: Database, exchange: str) -> int:
    """The demo user's wallet id on `exchange`."""
    uow = _uow(stack, database)
    with uow:
        demo = uow.users.by_handle(DEMO)
        assert demo is not None and demo.id is not None
        [wallet] = [w for w in uow.wallets.for_user(demo.id) if w.exchange == exchange]
        assert wallet.id is not None
        return wallet.id


@pytest.fixture
def database(rasa_stack: RasaStack) -> Iterator[Database]:
    """KeyMedic's database of the running stack, as another process sees it."""
    database = create_database(rasa_stack.settings.database_url)
    yield database
    database.dispose()


def _run_status(stack: RasaStack, database: Database, sync_run_id: int) -> SyncStatus:
    uow = _uow(stack, database)
    with uow:
        run = uow.sync_runs.get(sync_run_id)
        assert run is not None
        return run.status


def _outreach_rows(stack: RasaStack, database: Database, wallet_id: int) -> list[OutreachRecord]:
    uow = _uow(stack, database)
    with uow:
        return OutreachRepository(uow.session).for_wallet(wallet_id)


def test_a_revoked_key_brings_one_offer_a_day_into_the_users_conversation(
    rasa_stack: RasaStack, database: Database
) -> None:
    stack = rasa_stack
    kraken = _demo_wallet(stack, database, "kraken")
    # The user was here last (other tests talk to the demo user in conversations of their own).
    stack.say(DEMO, "/restart")
    stack.say(DEMO, "hi")
    before = len(_offers(stack, DEMO))

    # The key in the wallet worked when it was saved; then the exchange revoked it (an earlier test may have
    # put a working key in; this one is the sandbox's revoked key).
    update = services.replace_credential(
        _uow(stack, database),
        kraken,
        Credentials.from_mapping(credentials_for("kraken", "revoked")),
        diagnosis_passed=True,
    )
    _enqueue_resync(stack, update.sync_run_id)

    offers = _eventually("the outreach offer", lambda: _offers(stack, DEMO)[before:])
    assert len(offers) == 1
    buttons = offers[0].get("data", {}).get("buttons") or []
    assert [b.get("payload") for b in buttons] == ["/affirm", "/deny"]
    assert _run_status(stack, database, update.sync_run_id) is SyncStatus.FAILED
    [row] = _eventually(
        "the outreach row settled",
        lambda: [r for r in _outreach_rows(stack, database, kraken) if r.status == SENT],
    )
    assert (row.conversation_id, row.sync_run_id, row.exchange) == (DEMO, update.sync_run_id, "kraken")

    # A second failure the same day: the job runs, and says nothing.
    second = services.request_sync(_uow(stack, database), kraken, reason="scheduled")
    assert second != update.sync_run_id
    _enqueue_resync(stack, second)
    worker_log = stack.log_dir / "worker.log"
    _eventually(
        "the second outreach job",
        lambda: f"outreach for sync run {second}: already_today" in worker_log.read_text(errors="replace"),
    )
    assert _run_status(stack, database, second) is SyncStatus.FAILED
    assert len(_offers(stack, DEMO)) == before + 1
    assert len(_outreach_rows(stack, database, kraken)) == 1

    # "Yes": the key update starts for that very wallet (the form only needs the new key).
    replies = stack.say(DEMO, "yes")
    forms = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)]
    assert forms and forms[-1]["wallet_id"] == kraken, replies


def test_a_conversation_paused_for_support_gets_no_offer(rasa_stack: RasaStack, database: Database) -> None:
    stack = rasa_stack
    coinbase = _demo_wallet(stack, database, "coinbase")
    stack.say(DEMO, "/restart")
    handed_over = " ".join(str(r.get("text")) for r in stack.say(DEMO, "I want to talk to a person"))
    assert "ticket #" in handed_over
    ticket = handed_over.split("ticket #", 1)[1].split(")", 1)[0]
    events_before = len(stack.api("GET", f"/conversations/{DEMO}/tracker").json()["events"])

    update = services.replace_credential(
        _uow(stack, database),
        coinbase,
        Credentials.from_mapping(credentials_for("coinbase", "revoked")),
        diagnosis_passed=True,
    )
    _enqueue_resync(stack, update.sync_run_id)
    worker_log = stack.log_dir / "worker.log"
    _eventually(
        "the outreach job",
        lambda: (
            f"outreach for sync run {update.sync_run_id}: paused" in worker_log.read_text(errors="replace")
        ),
    )
    events = stack.api("GET", f"/conversations/{DEMO}/tracker").json()["events"]
    assert len(events) == events_before  # not even the external intent reached the paused conversation
    [row] = _outreach_rows(stack, database, coinbase)
    assert (row.status, row.detail, row.conversation_id) == ("skipped", "paused", DEMO)

    with httpx.Client(
        base_url=f"{stack.web_url}/agent/tickets",
        headers={"Authorization": f"Bearer {stack.agent_token}"},
        timeout=15,
    ) as agent:  # leave the demo conversation as other tests expect it: the bot answering, no open ticket
        assert agent.post(f"/{ticket}/close", json={"agent": "sam"}).json()["status"] == "closed"
