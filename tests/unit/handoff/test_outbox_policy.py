"""The outbox's retry schedule and one delivery pass, over a fake outbox (no database, no sockets)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.handoff.outbox import DeliveryFailed, RetryPolicy, deliver_due
from bot.store.model import OutboxMessage

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def test_the_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=30, cap_s=3600)
    assert policy.schedule(9) == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_the_backoff_stays_at_the_cap_for_a_row_failing_for_weeks() -> None:
    assert RetryPolicy(base_s=30, cap_s=3600).delay(10_000) == timedelta(hours=1)


@pytest.mark.parametrize("kwargs", [{"base_s": 0}, {"base_s": 10, "cap_s": 5}, {"lease_s": 0}])
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().delay(0)


class FakeOutbox:
    """Claims and settles like `OutboxRepository`, on a list."""

    def __init__(self, messages: list[OutboxMessage]) -> None:
        self.messages = messages

    def claim_next(
        self, *, reasons: Sequence[str], now: datetime, lease_until: datetime
    ) -> OutboxMessage | None:
        for message in self.messages:
            if message.status in ("pending", "sending") and message.next_attempt_at <= now:
                if message.reason in reasons:
                    message.status, message.attempts = "sending", message.attempts + 1
                    message.next_attempt_at = lease_until
                    return message
        return None

    def settle_delivered(self, message_id: int, *, now: datetime) -> bool:
        message = next(m for m in self.messages if m.id == message_id)
        message.status, message.delivered_at, message.last_error = "delivered", now, None
        return True

    def settle_failed(self, message_id: int, *, attempt: int, retry_at: datetime, error: str) -> bool:
        message = next(m for m in self.messages if m.id == message_id)
        message.status, message.next_attempt_at, message.last_error = "pending", retry_at, error
        return True


class FakeUnitOfWork:
    def __init__(self, outbox: FakeOutbox) -> None:
        self.outbox = outbox
        self.commits = 0

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def commit(self) -> None:
        self.commits += 1


def message(n: int, reason: str = "ticket_opened") -> OutboxMessage:
    return OutboxMessage(
        delivery_id=f"d{n}", reason=reason, payload={"ticket_id": n}, ticket_id=n, next_attempt_at=NOW, id=n
    )


def test_a_pass_sends_due_rows_and_schedules_failures_without_secrets() -> None:
    outbox = FakeOutbox([message(1), message(2), message(3, reason="outreach")])
    uow = FakeUnitOfWork(outbox)

    def send(m: OutboxMessage) -> None:
        if m.id == 2:
            raise RuntimeError("POST https://hooks.slack.com/services/T000/B000/XXXXSECRET failed")

    report = deliver_due(
        lambda: uow, send, reasons=("ticket_opened",), policy=RetryPolicy(), clock=lambda: NOW
    )

    assert report.to_dict() == {"delivered": ["d1"], "failed": ["d2"]}
    first, second, other = outbox.messages
    assert (first.status, first.attempts, first.delivered_at) == ("delivered", 1, NOW)
    assert (second.status, second.attempts) == ("pending", 1)
    assert second.next_attempt_at == NOW + timedelta(seconds=30)
    assert second.last_error == "unexpected error: RuntimeError"  # never the exception's text (a URL)
    assert (other.status, other.attempts) == ("pending", 0)  # not a reason this pass delivers


def test_a_delivery_failure_keeps_its_own_words() -> None:
    outbox = FakeOutbox([message(1)])

    def send(m: OutboxMessage) -> None:
        raise DeliveryFailed("HTTP 503")

    deliver_due(
        lambda: FakeUnitOfWork(outbox),
        send,
        reasons=("ticket_opened",),
        policy=RetryPolicy(),
        clock=lambda: NOW,
    )
    assert outbox.messages[0].last_error == "HTTP 503"


def test_a_pass_stops_after_max_messages() -> None:
    outbox = FakeOutbox([message(n) for n in range(1, 6)])
    sent: list[Any] = []
    deliver_due(
        lambda: FakeUnitOfWork(outbox),
        sent.append,
        reasons=("ticket_opened",),
        policy=RetryPolicy(),
        clock=lambda: NOW,
        max_messages=3,
    )
    assert [m.delivery_id for m in sent] == ["d1", "d2", "d3"]
