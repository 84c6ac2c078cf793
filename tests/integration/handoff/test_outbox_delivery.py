"""Ticket notifications through the outbox, on SQLite and PostgreSQL, to a real local webhook receiver that
answers 500 three times before it answers 200: one delivery per ticket opening, however many workers run and
whichever of them stops half-way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.handoff.outbox import RetryPolicy, deliver_due
from bot.handoff.services import SUPPORT_REASONS, close_ticket
from bot.handoff.webhook import WebhookSender
from bot.store import orm
from bot.store.model import OutboxMessage
from tests.support.clock import FakeWallClock

from .conftest import KEY_ENTRY, Tickets, WebhookReceiver, run_receiver

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0


def rows(uow_factory: Any) -> list[OutboxMessage]:
    """Every outbox row, oldest first."""
    uow = uow_factory()
    with uow:
        found = list(uow.session.scalars(select(OutboxMessage).order_by(orm.outbox.c.id)))
        uow.session.expunge_all()  # kept as read: the unit of work's closing rollback would expire them
        return found


def sender(receiver: WebhookReceiver, kind: str = "json", timeout_s: float = 5.0) -> WebhookSender:
    return WebhookSender(
        receiver.url,
        "slack" if kind == "slack" else "json",
        web_base_url="https://km.example",
        timeout_s=timeout_s,
    )


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    give_up = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the ticket writes its notification ----------------------------------------------------------------------


async def test_opening_a_ticket_queues_one_notification_per_opening(
    tickets: Tickets, uow_factory: Any
) -> None:
    first = await tickets.open("conv-1")
    again = await tickets.open("conv-1", reason="user asked for a person")  # a retried message, a 2nd request

    assert first == again
    [message] = rows(uow_factory)
    assert (message.ticket_id, message.reason, message.status) == (first, "ticket_opened", "pending")
    assert message.delivery_id.startswith("kmt_")
    summary = message.payload
    assert summary["user"]["handle"] == "alice" and summary["wallet"]["exchange"] == "kraken"
    assert summary["diagnosis"]["failing_items"] == [
        {"item": "no_ip_restriction", "status": "fail", "raw_code": "EGeneral:Permission denied"},
        {"item": "has_activity", "status": "unknown", "raw_code": None},
    ]
    assert summary["checklist"] == {"checklist_activated": True}
    assert summary["edits_at_stake"]["total"] == 0
    assert tickets.nudges == [1]  # the delivery job was nudged once, after the commit

    close_ticket(uow_factory(), first, agent="sam")
    assert await tickets.open("conv-1") == first  # the conversation keeps its one ticket...
    assert [m.payload["opening"] for m in rows(uow_factory)] == [1, 2]  # ...and support hears of it again
    assert len({m.delivery_id for m in rows(uow_factory)}) == 2


async def test_hand_offs_racing_for_one_conversation_make_one_ticket_and_one_notification(
    tickets: Tickets, uow_factory: Any
) -> None:
    # A double click, or Slack retrying an event: several hand-offs of one conversation at the same moment.
    ids = await asyncio.gather(*(tickets.open("conv-race") for _ in range(4)))
    assert len(set(ids)) == 1
    [message] = rows(uow_factory)
    assert message.ticket_id == ids[0]


async def test_a_ticket_and_its_notification_are_one_transaction(
    tickets: Tickets, uow_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.store.repository import OutboxRepository

    def outbox_unavailable(self: OutboxRepository, item: object) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(OutboxRepository, "add", outbox_unavailable)
    with pytest.raises(RuntimeError):
        await tickets.open("conv-x")
    uow = uow_factory()
    with uow:
        assert uow.tickets.by_conversation("conv-x") is None  # no ticket without its notification


# -- delivery ------------------------------------------------------------------------------------------------


async def test_three_failures_then_one_delivery_with_backoff(
    tickets: Tickets, uow_factory: Any, receiver: WebhookReceiver
) -> None:
    ticket_id = await tickets.open("conv-1")
    # A moment after the tickets it delivers were opened.
    clock = FakeWallClock(datetime.now(timezone.utc) + timedelta(seconds=1))
    start = clock.now
    policy = RetryPolicy(base_s=30, cap_s=3600, lease_s=120)
    send = sender(receiver)
    seen: list[tuple[int, str, datetime, str | None]] = []
    for _ in range(6):
        deliver_due(uow_factory, send, reasons=SUPPORT_REASONS, policy=policy, clock=clock)
        [message] = rows(uow_factory)
        seen.append((message.attempts, message.status, message.next_attempt_at, message.last_error))
        clock.now += timedelta(seconds=61)  # past the next retry only while the backoff stays short
    send.close()

    assert seen[0] == (1, "pending", start + timedelta(seconds=30), "HTTP 500")
    assert seen[1] == (2, "pending", start + timedelta(seconds=61 + 60), "HTTP 500")
    assert seen[2][:2] == (3, "pending") and seen[2][2] == start + timedelta(seconds=122 + 120)
    assert seen[3][:2] == (3, "pending")  # 61 s later the 120 s wait is not over: nothing is sent
    assert seen[4][:2] == (4, "delivered") and seen[4][3] is None
    assert seen[5][:2] == (4, "delivered")  # and nothing is sent again

    [delivery_id] = receiver.requests
    assert receiver.statuses(delivery_id) == [500, 500, 500, 200]
    body = receiver.bodies[delivery_id][-1]
    assert body["delivery_id"] == delivery_id and body["type"] == "keymedic.ticket.opened"
    assert body["ticket"]["url"] == f"https://km.example/agent/tickets/{ticket_id}"


async def test_slack_deliveries_are_block_kit_with_the_delivery_id_in_a_header(
    tickets: Tickets, uow_factory: Any
) -> None:
    await tickets.open("conv-1")
    with run_receiver(WebhookReceiver(failures=0)) as receiver:
        with sender(receiver, "slack") as send:
            report = deliver_due(uow_factory, send, reasons=SUPPORT_REASONS, policy=RetryPolicy())
    [delivery_id] = report.delivered
    [body] = receiver.bodies[delivery_id]
    assert set(body) == {"text", "blocks"}  # Slack rejects unknown top-level fields
    assert body["blocks"][0]["type"] == "header"
    assert any(delivery_id in str(block) for block in body["blocks"] if block["type"] == "context")


async def test_two_workers_at_once_deliver_each_ticket_exactly_once(
    tickets: Tickets, uow_factory: Any
) -> None:
    ticket_ids = [await tickets.open(f"conv-{n}") for n in range(4)]
    policy = RetryPolicy(base_s=0.05, cap_s=0.2, lease_s=10)
    done = threading.Event()
    errors: list[BaseException] = []
    passes = [0, 0]  # each worker's finished passes

    def worker(n: int, receiver: WebhookReceiver) -> None:
        try:
            with sender(receiver) as send:
                while not done.is_set():
                    deliver_due(uow_factory, send, reasons=SUPPORT_REASONS, policy=policy)
                    passes[n] += 1
                    time.sleep(0.01)
        except BaseException as error:  # reported by the test
            errors.append(error)

    # Each answer takes a while, so two workers would overlap on a row if a claim let them.
    with run_receiver(WebhookReceiver(failures=3, delay_s=0.05)) as receiver:
        workers = [threading.Thread(target=worker, args=(n, receiver)) for n in range(2)]
        for thread in workers:
            thread.start()
        try:
            wait_until(lambda: all(m.status == "delivered" for m in rows(uow_factory)), "every delivery")
            # A duplicate could only come from a pass: wait until each worker has finished the pass it was
            # in and a whole one after it.
            mark = list(passes)
            wait_until(
                lambda: all(now >= then + 2 for now, then in zip(passes, mark, strict=True)),
                "two more passes",
            )
        finally:
            done.set()
            for thread in workers:
                thread.join(DEADLINE_S)
    assert not errors

    messages = rows(uow_factory)
    assert sorted(m.ticket_id for m in messages if m.ticket_id) == sorted(ticket_ids)
    assert receiver.accepted() == {m.delivery_id: 1 for m in messages}  # one delivery per ticket
    assert all(receiver.statuses(m.delivery_id) == [500, 500, 500, 200] for m in messages)
    assert set(receiver.max_in_flight.values()) == {1}  # never two attempts of one row at the same time
    assert all(m.attempts == 4 for m in messages)


# -- a worker process stopped in the middle, then a fresh one ------------------------------------------------

# Passes until killed; with the argument "until-delivered", stops after the pass that follows its first
# delivery, so that once it has exited the test knows every pass it made is over.
WORKER = """
import sys, time
from bot.jobs import run_outbox_delivery
until_delivered = sys.argv[1:] == ["until-delivered"]
delivered = False
while True:
    report = run_outbox_delivery()
    if delivered:
        break
    delivered = until_delivered and bool(report["delivered"])
    time.sleep(0.05)
"""


@pytest.fixture
def worker_env(settings: Settings, tmp_path: Path) -> Callable[[str], dict[str, str]]:
    def env(webhook_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "KEYMEDIC_DATABASE_URL": settings.database_url,
            "KEYMEDIC_ENCRYPTION_KEYS": KEY_ENTRY,
            "KEYMEDIC_VAR_DIR": str(tmp_path / "var"),
            "KEYMEDIC_SUPPORT_WEBHOOK_URL": webhook_url,
            "KEYMEDIC_SUPPORT_WEBHOOK_KIND": "json",
            "KEYMEDIC_SUPPORT_WEBHOOK_TIMEOUT": "3",
            "KEYMEDIC_OUTBOX_RETRY_BASE": "0.05",
            "KEYMEDIC_OUTBOX_RETRY_CAP": "0.2",
            "KEYMEDIC_OUTBOX_LEASE": "4",
        }

    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def test_a_fresh_worker_finishes_what_a_stopped_one_left_half_way(
    tickets: Tickets,
    uow_factory: Any,
    worker_env: Callable[[str], dict[str, str]],
    processes: list[subprocess.Popen[bytes]],
) -> None:
    ticket_id = await tickets.open("conv-1")
    # The second request hangs: the first worker is killed while it waits for the answer.
    with run_receiver(WebhookReceiver(failures=3, hang_on=frozenset({2}))) as receiver:
        env = worker_env(receiver.url)
        first = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stderr=subprocess.DEVNULL)
        processes.append(first)
        wait_until(receiver.hanging.is_set, "the first worker's second attempt")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        [message] = rows(uow_factory)
        assert (message.status, message.attempts) == ("sending", 2)  # claimed, never settled

        second = subprocess.Popen(
            [sys.executable, "-c", WORKER, "until-delivered"], env=env, stderr=subprocess.DEVNULL
        )
        processes.append(second)
        assert second.wait(DEADLINE_S) == 0, "the fresh worker did not deliver"

        [message] = rows(uow_factory)
        assert message.ticket_id == ticket_id and message.attempts == 4
        assert receiver.accepted() == {message.delivery_id: 1}
        # 1: 500; 2: hung, its worker killed (answered after the test releases it); 3: 500; 4: 200.
        assert receiver.statuses(message.delivery_id) == [500, 0, 500, 200]


# -- the Huey job --------------------------------------------------------------------------------------------


async def test_the_delivery_job_runs_through_the_local_sqlite_queue(
    tickets: Tickets,
    uow_factory: Any,
    worker_env: Callable[[str], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huey.storage import SqliteStorage

    from bot.jobs import enqueue_outbox_delivery, huey, sweep_outbox

    await tickets.open("conv-1")
    with run_receiver(WebhookReceiver(failures=0)) as receiver:
        for name, value in worker_env(receiver.url).items():
            if name.startswith("KEYMEDIC_"):
                monkeypatch.setenv(name, value)
        monkeypatch.delenv("KEYMEDIC_JOBS_URL", raising=False)
        huey.storage = None  # rebuilt from this test's settings on first use
        try:
            enqueue_outbox_delivery()
            assert isinstance(huey.storage, SqliteStorage)
            task = huey.dequeue()
            assert task is not None and task.name == "deliver_outbox"
            result = huey.execute(task)
            assert len(result["delivered"]) == 1
            assert sweep_outbox.call_local() == {"delivered": [], "failed": [], "configured": True}
            assert huey.dequeue() is None
        finally:
            huey.storage = None
    assert [m.status for m in rows(uow_factory)] == ["delivered"]
    assert list(receiver.accepted().values()) == [1]


async def test_without_a_webhook_nothing_is_claimed(
    tickets: Tickets,
    uow_factory: Any,
    worker_env: Callable[[str], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.jobs import run_outbox_delivery

    await tickets.open("conv-1")
    for name, value in worker_env("").items():
        if name.startswith("KEYMEDIC_"):
            monkeypatch.setenv(name, value)
    assert run_outbox_delivery() == {"delivered": [], "failed": [], "configured": False}
    assert [(m.status, m.attempts) for m in rows(uow_factory)] == [("pending", 0)]
    assert "1 support notification(s) wait" in caplog.text
