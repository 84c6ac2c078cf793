"""`diagnose()`: test one pasted key live on its exchange and return one outcome per checklist item.

Flow: format checks (no request when they fail) → the key's single flight (one diagnosis of a key at a time;
those that waited take its outcome, `bot.diagnosis.flight`) → the refusal memory → per user/key rate limit →
the exchange client's probe on the shared pooled client, inside one deadline. An exchange that cannot be asked
(down, rate limited, clock skew, timeout, nonsense answers) gives `Diagnosis.unavailable`, and the items it
did not settle stay UNKNOWN: never a bad-key verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import httpx

from bot.config import Settings, exchange_base_url, load_settings
from bot.diagnosis import limits
from bot.diagnosis.errors import DiagnosisRateLimited, UnsupportedExchange
from bot.diagnosis.flight import Ticket
from bot.diagnosis.format import FormatResult, check_format
from bot.exchange_ids import DISPLAY_NAMES, EXCHANGE_IDS
from bot.exchanges import LIVE_CLIENTS, client_class
from bot.exchanges._base import AuthRejected, ExchangeClient, ExchangeUnavailable, Findings, undecided
from bot.exchanges._http import Deadline, Session, shared_client
from bot.observability import metrics
from bot.types.credentials import Credentials
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable

__all__ = ["diagnose", "LIVE_EXCHANGES", "reset_rate_limits"]

logger = logging.getLogger("bot.diagnosis")

T = TypeVar("T")

LIVE_EXCHANGES: Final[tuple[str, ...]] = tuple(LIVE_CLIENTS)

# The outer guard gives the probe this much beyond the deadline to unwind (every request and sleep inside is
# already bounded by the deadline itself).
_GUARD_GRACE_S: Final = 0.25
# A key's flight lock outlives its diagnosis's deadline by this, so a holder that died frees it soon after.
_FLIGHT_MARGIN_S: Final = 2.0
# How often a diagnosis waiting for its key's flight looks again (in memory; in Redis).
_POLL_LOCAL_S: Final = 0.01
_POLL_SHARED_S: Final = 0.025


def reset_rate_limits() -> None:
    """Forget recent diagnoses (tests; an operator after a false alarm)."""
    limits.reset()


async def diagnose(
    exchange: str,
    credentials: Credentials,
    *,
    client: httpx.AsyncClient | None = None,
    deadline_s: float | None = None,
    user_id: str | None = None,
) -> Diagnosis:
    """Test `credentials` on `exchange` and say, item by item, what works and what to fix.

    Raises `UnsupportedExchange` for an exchange without a live client and `DiagnosisRateLimited` when this
    user or key was tested too often lately; every other outcome, the exchange being down included, is a
    `Diagnosis`.
    """
    started = time.monotonic()
    if exchange not in LIVE_CLIENTS:
        raise UnsupportedExchange(
            DISPLAY_NAMES.get(exchange, exchange) if exchange in EXCHANGE_IDS else exchange
        )
    cls = client_class(exchange)
    name = DISPLAY_NAMES.get(exchange, exchange)  # type: ignore[call-overload]

    checked = check_format(cls, credentials)
    if not checked.ok:
        items = (checked.outcome,) + tuple(
            undecided(item, "Not tested: fix the format problem first.") for item in list(Item)[1:]
        )
        diagnosis = Diagnosis(exchange, items, None, time.monotonic() - started)
        _log(diagnosis, requests=0)
        metrics.record_diagnosis(diagnosis)
        return diagnosis

    settings = load_settings()
    limiter = limits.limiter_for(settings)
    deadline_s = settings.diagnosis_deadline_s if deadline_s is None else deadline_s
    # One diagnosis of a key at a time across the deployment (bot/diagnosis/flight.py): a burst of first
    # checks of one key must not each pass the budget before the first refusal is remembered.
    ticket = limiter.ticket(exchange, checked.credentials)
    lock_ttl_s = deadline_s + _GUARD_GRACE_S + _FLIGHT_MARGIN_S
    if not await _take_turn(limiter, ticket, lock_ttl_s):
        diagnosis = _still_in_flight(exchange, name, started)
        logger.warning("diagnosis gave up waiting for another check of the key exchange=%s", exchange)
        _log(diagnosis, requests=0)
        return diagnosis
    try:
        return await _diagnose_in_turn(
            exchange, name, cls, checked, settings, limiter, ticket, client, deadline_s, user_id, started
        )
    finally:
        await _run(limiter, limiter.unlock, ticket)


async def _diagnose_in_turn(
    exchange: str,
    name: str,
    cls: type[ExchangeClient],
    checked: FormatResult,
    settings: Settings,
    limiter: limits.Limiter,
    ticket: Ticket,
    client: httpx.AsyncClient | None,
    deadline_s: float,
    user_id: str | None,
    started: float,
) -> Diagnosis:
    """The diagnosis proper, while this one holds its key's flight lock."""
    # Refused lately, or the exchange asked KeyMedic to back off: answer from memory, send nothing
    # (bot/diagnosis/refusals.py).
    remembered = await _run(limiter, limiter.remembered, exchange, checked.credentials)
    if remembered is not None:
        logger.info("diagnosis answered from memory exchange=%s (no request)", exchange)
        _log(remembered, requests=0)
        return remembered
    # The check this one waited for tested the same credential: its outcome is this one's, no request.
    shared = await _run(limiter, limiter.shared_outcome, ticket)
    if shared is not None:
        logger.info("diagnosis answered by the check in flight exchange=%s (no request)", exchange)
        _log(shared, requests=0)
        return shared
    wait = await _run(limiter, limiter.acquire, settings, exchange, checked.credentials.api_key, user_id)
    if wait > 0:
        logger.warning("diagnosis refused: rate limit exchange=%s wait_s=%.0f", exchange, wait)
        raise DiagnosisRateLimited(name, wait)

    deadline = Deadline(deadline_s)
    session = Session(
        client or shared_client(),
        exchange=name,
        base_url=exchange_base_url(exchange, cls.default_base_url),
        deadline=deadline,
    )
    probe = cls(checked.credentials)
    findings = Findings()
    findings.add(checked.outcome)
    probe.preset(findings)
    unavailable: Unavailable | None = None
    refused = False
    try:
        await asyncio.wait_for(probe.probe(session, findings), timeout=deadline.remaining() + _GUARD_GRACE_S)
    except AuthRejected as exc:
        findings.rejected(exc)
        refused = True
        metrics.record_exchange_error(exchange, "auth")
    except ExchangeUnavailable as exc:
        unavailable = exc.to_unavailable()
    except asyncio.TimeoutError:
        unavailable = Unavailable("timeout", f"{name} did not answer within the time KeyMedic allows")

    if unavailable is not None:
        default = f"Couldn't be checked: {unavailable.message}."
    else:
        default = "Not checked: the exchange stopped at an earlier problem."
    diagnosis = Diagnosis(exchange, findings.complete(default), unavailable, time.monotonic() - started)
    if refused or unavailable is not None:
        await _run(limiter, limiter.remember, exchange, checked.credentials, diagnosis, refused)
    await _run(limiter, limiter.publish, ticket, diagnosis)
    _log(diagnosis, requests=session.requests_sent)
    metrics.record_diagnosis(diagnosis)
    return diagnosis


async def _take_turn(limiter: limits.Limiter, ticket: Ticket, lock_ttl_s: float) -> bool:
    """Wait until this diagnosis holds its key's flight lock (True), noting whose flights it waited for; False
    when it is still held after a lock's whole TTL and then some (only a stream of other diagnoses of the
    key, each in its own turn, can do that: a holder that died frees it with its TTL)."""
    give_up = time.monotonic() + lock_ttl_s + _FLIGHT_MARGIN_S
    poll_s = _POLL_SHARED_S if limiter.blocking else _POLL_LOCAL_S
    while True:
        holder = await _run(limiter, limiter.try_lock, ticket, lock_ttl_s)
        if holder is None:
            return True
        ticket.waited_for.add(holder)
        if time.monotonic() >= give_up:
            return False
        await asyncio.sleep(poll_s)


def _still_in_flight(exchange: str, name: str, started: float) -> Diagnosis:
    unavailable = Unavailable("timeout", f"another check of this key on {name} was still running")
    detail = f"Couldn't be checked: {unavailable.message}."
    items = tuple(ItemOutcome(item, Status.UNKNOWN, detail=detail) for item in Item)
    return Diagnosis(exchange, items, unavailable, time.monotonic() - started)


async def _run(limiter: limits.Limiter, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a worker thread when the limiter waits on Redis; in place when it is in memory.

    Why: a hop to the default thread pool (a handful of workers) costs more than the in-memory call
    itself, and 20 diagnoses at once queue their hops behind each other (issue 17, docs/bench.md)."""
    if limiter.blocking:
        return await asyncio.to_thread(call, *args)
    return call(*args)


def _log(diagnosis: Diagnosis, *, requests: int) -> None:
    # Statuses and exchange codes only: a diagnosis holds no secret, but keep the line short and greppable.
    logger.info(
        "diagnosis exchange=%s %s unavailable=%s requests=%d elapsed_s=%.3f",
        diagnosis.exchange,
        " ".join(f"{o.item.value}={o.status.value}" for o in diagnosis.items if o.status is not Status.PASS),
        diagnosis.unavailable.kind if diagnosis.unavailable else "-",
        requests,
        diagnosis.elapsed_s,
    )
