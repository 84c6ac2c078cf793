"""`diagnose()`: test one pasted key live on its exchange and return one outcome per checklist item.

Flow: format checks (no request when they fail) → per user/key rate limit → the exchange client's probe on the
shared pooled client, inside one deadline. An exchange that cannot be asked (down, rate limited, clock skew,
timeout, nonsense answers) gives `Diagnosis.unavailable`, and the items it did not settle stay UNKNOWN: never
a bad-key verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import httpx

from bot.config import exchange_base_url, load_settings
from bot.diagnosis import limits
from bot.diagnosis.errors import DiagnosisRateLimited, UnsupportedExchange
from bot.diagnosis.format import check_format
from bot.diagnosis.model import Credentials, Diagnosis, Item, Status, Unavailable
from bot.exchange_ids import DISPLAY_NAMES, EXCHANGE_IDS
from bot.exchanges import LIVE_CLIENTS, client_class
from bot.exchanges._base import AuthRejected, ExchangeUnavailable, Findings, undecided
from bot.exchanges._http import Deadline, Session, shared_client
from bot.observability import metrics

__all__ = ["diagnose", "LIVE_EXCHANGES", "reset_rate_limits"]

logger = logging.getLogger("bot.diagnosis")

T = TypeVar("T")

LIVE_EXCHANGES: Final[tuple[str, ...]] = tuple(LIVE_CLIENTS)

# The outer guard gives the probe this much beyond the deadline to unwind (every request and sleep inside is
# already bounded by the deadline itself).
_GUARD_GRACE_S: Final = 0.25


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
    # Refused lately, or the exchange asked KeyMedic to back off: answer from memory, send nothing
    # (bot/diagnosis/refusals.py).
    remembered = await _run(limiter, limiter.remembered, exchange, checked.credentials)
    if remembered is not None:
        logger.info("diagnosis answered from memory exchange=%s (no request)", exchange)
        _log(remembered, requests=0)
        return remembered
    wait = await _run(limiter, limiter.acquire, settings, exchange, checked.credentials.api_key, user_id)
    if wait > 0:
        logger.warning("diagnosis refused: rate limit exchange=%s wait_s=%.0f", exchange, wait)
        raise DiagnosisRateLimited(name, wait)

    deadline = Deadline(settings.diagnosis_deadline_s if deadline_s is None else deadline_s)
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
    _log(diagnosis, requests=session.requests_sent)
    metrics.record_diagnosis(diagnosis)
    return diagnosis


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
