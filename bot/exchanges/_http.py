"""HTTP policy shared by all exchange clients: one deadline, bounded retries, one pooled client per process.

Rules (DESIGN §4, reference/exchanges.md §0.3):
- every request and every back-off sleep fits inside the deadline; a response that trickles in past it is cut
  off (`asyncio.wait_for` around send *and* body read, since httpx's read timeout is per chunk). A diagnosis
  has one deadline for all its calls (`Session(deadline=…)`); a history sync is a long job with a fresh
  deadline per call, retries and back-off included (`Session(per_call_s=…)`, docs/store.md);
- only `ExchangeUnreachable`, `RateLimited` and `ServerError` are retried, with exponential back-off and
  jitter, honouring `Retry-After`; an `AuthRejected` is never retried;
- each attempt builds and signs a fresh request, so a retry carries a fresh nonce/timestamp;
- logs name the exchange, method, path and status only: never headers, query strings or bodies (they carry
  keys and signatures).
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import json
import logging
import random
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx

from bot.config import load_settings
from bot.exchanges._base import (
    ExchangeTimeout,
    ExchangeUnavailable,
    ExchangeUnreachable,
    RateLimited,
    ServerError,
    UnexpectedResponse,
)

__all__ = [
    "USER_AGENT",
    "Deadline",
    "RetryPolicy",
    "Session",
    "shared_client",
    "aclose_shared_client",
    "new_client",
    "json_body",
    "check_status",
    "retry_after_s",
]

logger = logging.getLogger("bot.exchanges")

T = TypeVar("T")


def remember_missing_sniffio() -> bool:
    """Record once that `sniffio` is not installed, so that failing to import it costs nothing.

    Why: httpcore 1.0 runs `import sniffio` each time it sets up a lock (`current_async_library`), several
    times per request. anyio 4 no longer installs sniffio, and Python does not cache a failed import, so each
    attempt searched every `sys.path` entry (issue 17, docs/bench.md). `sys.modules[name] = None` is Python's
    documented way to say "not importable": the import then raises `ModuleNotFoundError` at once, exactly as
    before, only without the search. Returns whether it recorded the absence (False when sniffio is
    installed or already imported).
    """
    if "sniffio" in sys.modules or importlib.util.find_spec("sniffio") is not None:
        return False
    sys.modules["sniffio"] = None  # type: ignore[assignment]
    return True


remember_missing_sniffio()

# Kraken requires a User-Agent on every request (reference/exchanges.md §3); the others accept one.
USER_AGENT: Final = "KeyMedic/0.1 (+key diagnosis)"


class Deadline:
    """A point in time every request and sleep of one diagnosis must finish by."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.at = self.started + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())

    def elapsed(self) -> float:
        return self._clock() - self.started


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential back-off with jitter, for retryable unavailability only."""

    max_attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 2.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    # What a per-call deadline reads (`Session(per_call_s=...)`); a test passes a fake, as it does `sleep`.
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1`; the exchange's `Retry-After` wins when given."""
        if retry_after is not None:
            return max(0.0, retry_after)
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return backoff * random.uniform(0.5, 1.0)


def retry_after_s(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def check_status(response: httpx.Response, exchange: str) -> None:
    """Raise for the statuses that mean "no answer" on every exchange: 429/418 and 5xx."""
    status = response.status_code
    if status == 429:
        raise RateLimited(
            f"{exchange} is rate limiting requests",
            raw_code="HTTP 429",
            retry_after_s=retry_after_s(response),
        )
    if status == 418:
        # Binance bans an IP after ignored 429s (reference/exchanges.md §5): retrying only extends the ban.
        raise RateLimited(
            f"{exchange} has temporarily banned requests from this address",
            raw_code="HTTP 418",
            retry_after_s=retry_after_s(response),
            retryable=False,
        )
    if status >= 500:
        raise ServerError(
            f"{exchange} answered with a server error (HTTP {status})", raw_code=f"HTTP {status}"
        )


def json_body(response: httpx.Response, exchange: str) -> Any:
    """The decoded JSON body, or `UnexpectedResponse` (never the body itself in the message)."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise UnexpectedResponse(
            f"{exchange} answered with something that is not JSON (HTTP {response.status_code})",
            raw_code=f"HTTP {response.status_code}",
        ) from None


def new_client() -> httpx.AsyncClient:
    """A pooled client with KeyMedic's limits: reuse connections, bound how many a burst opens."""
    return httpx.AsyncClient(
        # Sized for bursts: 20 users testing keys at once make ~40 concurrent calls, and a call waiting for a
        # pooled connection costs a whole extra round trip (measured in `make bench`, "diagnosis").
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32, keepalive_expiry=30.0),
        timeout=httpx.Timeout(10.0),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        verify=_exchange_tls(),
    )


def _exchange_tls() -> ssl.SSLContext | bool:
    """certifi's CAs (httpx's default), or only those of `KEYMEDIC_EXCHANGE_CA_BUNDLE` when the operator
    names them (a TLS egress proxy, the tests' TLS sandbox; bot/production.py)."""
    bundle = load_settings().exchange_ca_bundle
    return ssl.create_default_context(cafile=bundle) if bundle else True


# An AsyncClient's connections belong to the event loop that opened them, so the process-wide client is kept
# per loop (one in the action server; a fresh one in each `asyncio.run` of the CLI or a test).
_shared: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}


def shared_client() -> httpx.AsyncClient:
    """The process's shared client for the running event loop."""
    loop = asyncio.get_running_loop()
    for key, (other_loop, _) in list(_shared.items()):
        if other_loop.is_closed():
            del _shared[key]
    entry = _shared.get(id(loop))
    if entry is None or entry[0] is not loop or entry[1].is_closed:
        entry = (loop, new_client())
        _shared[id(loop)] = entry
    return entry[1]


async def aclose_shared_client() -> None:
    """Close the running loop's shared client (at shutdown, or at the end of a CLI run)."""
    entry = _shared.pop(id(asyncio.get_running_loop()), None)
    if entry is not None:
        await entry[1].aclose()


class Session:
    """Requests for one job on one exchange: one base URL, one retry policy, and either one deadline for every
    call (a diagnosis: `deadline`) or a fresh deadline for each call (a history sync: `per_call_s`)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        exchange: str,
        base_url: str,
        deadline: Deadline | None = None,
        policy: RetryPolicy | None = None,
        per_call_s: float | None = None,
    ) -> None:
        if (deadline is None) == (per_call_s is None):
            raise ValueError("a Session has either one deadline or a deadline per call")
        self.client = client
        self.exchange = exchange
        self.base_url = base_url.rstrip("/")
        # The sandbox serves each exchange under a path prefix (`http://127.0.0.1:8765/kraken`); signers sign
        # the exchange's own API path, so they strip this prefix.
        self.prefix = httpx.URL(self.base_url).path.rstrip("/")
        self.deadline = deadline
        self.per_call_s = per_call_s
        self.policy = policy or RetryPolicy()
        self.requests_sent = 0

    async def call(
        self,
        method: str,
        path: str,
        *,
        auth: httpx.Auth,
        decode: Callable[[httpx.Response], T],
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_data: object = None,
    ) -> T:
        """Send one API call, retrying only retryable unavailability within the deadline, and decode it."""
        deadline = self.deadline
        if deadline is None:
            assert self.per_call_s is not None
            deadline = Deadline(self.per_call_s, self.policy.clock)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send_once(
                    method, path, auth, params, data, json_data, attempt, deadline
                )
                return decode(response)
            except ExchangeUnavailable as exc:
                if not exc.retryable or attempt >= self.policy.max_attempts:
                    raise
                delay = self.policy.delay(attempt, exc.retry_after_s)
                # Leave room for the retry itself; a Retry-After beyond the deadline means "tell the user".
                if delay + 0.05 >= deadline.remaining():
                    raise
                logger.debug("%s %s %s: %s, retrying in %.2f s", self.exchange, method, path, exc.kind, delay)
                await self.policy.sleep(delay)

    async def _send_once(
        self,
        method: str,
        path: str,
        auth: httpx.Auth,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        json_data: object,
        attempt: int,
        deadline: Deadline,
    ) -> httpx.Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ExchangeTimeout(f"{self.exchange} did not answer within the time KeyMedic allows")
        request = self.client.build_request(
            method,
            self.base_url + path,
            params=params,
            data=data,
            json=json_data,
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(remaining),
        )
        started = time.monotonic()
        self.requests_sent += 1
        try:
            response = await asyncio.wait_for(self.client.send(request, auth=auth), timeout=remaining)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            logger.debug("%s %s %s: timed out (attempt %d)", self.exchange, method, path, attempt)
            raise ExchangeTimeout(f"{self.exchange} did not answer within the time KeyMedic allows") from None
        except httpx.TransportError as exc:
            logger.debug(
                "%s %s %s: %s (attempt %d)", self.exchange, method, path, type(exc).__name__, attempt
            )
            raise ExchangeUnreachable(
                f"KeyMedic could not reach {self.exchange} ({type(exc).__name__})"
            ) from None
        logger.debug(
            "%s %s %s -> HTTP %d in %.3f s (attempt %d)",
            self.exchange,
            method,
            path,
            response.status_code,
            time.monotonic() - started,
            attempt,
        )
        return response
