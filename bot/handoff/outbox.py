"""Delivering the outbox: claim one due row, send it, record the outcome; repeat.

Each row is claimed in its own short transaction (`OutboxRepository.claim_next`: `FOR UPDATE SKIP LOCKED` on
PostgreSQL, a compare-and-set everywhere), sent with no transaction open, and settled in another. So:

- two workers never send one row at the same time (the claim is a lease held in the row: `sending` until
  `next_attempt_at`);
- a worker that dies mid-send leaves the row `sending`; it is due again when the lease lapses, and the next
  pass (any worker, any process) sends it again with the same delivery id, which the receiver uses to drop
  the duplicate if the first attempt did arrive;
- a failed attempt waits `RetryPolicy.delay(attempts)`: exponential, capped, and never given up on.

The state lives only in the database, so a restart loses nothing. `bot.jobs` runs `deliver_due` right after a
ticket opens and every minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.store.model import OutboxMessage, utcnow
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["RetryPolicy", "DeliveryFailed", "DeliveryReport", "Send", "deliver_due"]

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300


class DeliveryFailed(Exception):
    """One delivery attempt failed. `str()` is what is stored as the row's `last_error`, so it must hold no
    secret: a status code, an error type — never the webhook URL (a Slack webhook URL is a credential)."""


# Sends one message; returns on success (2xx), raises `DeliveryFailed` otherwise.
Send = Callable[[OutboxMessage], None]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: the n-th failed attempt waits `min(cap_s, base_s * 2**(n-1))`.

    `lease_s` is how long a claim holds a row; it must outlast one attempt (the webhook's timeout), or a slow
    attempt would be taken over while still running.
    """

    base_s: float = 30.0
    cap_s: float = 3600.0
    lease_s: float = 120.0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.lease_s <= 0:
            raise ValueError("retry base must be positive, cap at least the base, lease positive")

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1 for the first)."""
        if attempts < 1:
            raise ValueError("attempts counts from 1")
        # Compare exponents, not 2**n: a row failing for weeks must not build a huge integer.
        exponent = attempts - 1
        seconds = self.cap_s if exponent >= 63 else min(self.cap_s, self.base_s * 2**exponent)
        return timedelta(seconds=seconds)

    def schedule(self, attempts: int) -> list[float]:
        """The first `attempts` waits, in seconds (for docs and tests)."""
        return [self.delay(n).total_seconds() for n in range(1, attempts + 1)]


@dataclass
class DeliveryReport:
    """What one pass did."""

    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": list(self.delivered), "failed": list(self.failed)}


def _error_text(error: BaseException) -> str:
    if isinstance(error, DeliveryFailed):
        return str(error)[:MAX_ERROR_CHARS]
    # Anything else is reported by type only: its message could quote a URL, a header or a body.
    return f"unexpected error: {type(error).__name__}"


def deliver_due(
    uow_factory: Callable[[], AbstractUnitOfWork],
    send: Send,
    *,
    reasons: Sequence[str],
    policy: RetryPolicy,
    clock: Callable[[], datetime] = utcnow,
    max_messages: int = 100,
) -> DeliveryReport:
    """Deliver due outbox rows with one of `reasons`, one at a time, until none is due (or `max_messages`
    attempts were made in this pass)."""
    report = DeliveryReport()
    for _ in range(max_messages):
        now = clock()
        uow = uow_factory()
        with uow:
            message = uow.outbox.claim_next(
                reasons=reasons, now=now, lease_until=now + timedelta(seconds=policy.lease_s)
            )
            uow.commit()
        if message is None:
            break
        assert message.id is not None
        try:
            send(message)
        except Exception as error:
            text = _error_text(error)
            retry_at = clock() + policy.delay(message.attempts)
            uow = uow_factory()
            with uow:
                settled = uow.outbox.settle_failed(
                    message.id, attempt=message.attempts, retry_at=retry_at, error=text
                )
                uow.commit()
            log.warning(
                "outbox %s attempt %d failed (%s); next at %s%s",
                message.delivery_id,
                message.attempts,
                text,
                retry_at.isoformat(),
                "" if settled else " (claim was taken over)",
            )
            report.failed.append(message.delivery_id)
            continue
        uow = uow_factory()
        with uow:
            uow.outbox.settle_delivered(message.id, now=clock())
            uow.commit()
        log.info("outbox %s delivered on attempt %d", message.delivery_id, message.attempts)
        report.delivered.append(message.delivery_id)
    return report
