"""`diagnosis` (issue 3): how close a live key diagnosis gets to the round trips it cannot avoid.

For each exchange with a live client, against the exchange sandbox adding `LATENCY_S` (200 ms) to every answer
(`serve_in_thread(latency_s=0.2)`, `KEYMEDIC_<EXCHANGE>_URL` pointed at it for the measurement):

- **one diagnosis**: the median wall time of `diagnose()` on the sandbox's `valid` key, after one warm-up
  diagnosis (module import, first connections) that is left out;
- **dependent round trips**: the longest chain of requests that ran one after the other, derived from what
  the client actually sent — an httpx event hook on the diagnosis's client records when each request was
  handed to the transport and when its response headers came back, and the chain is the largest set of
  those intervals that do not overlap (`dependent_round_trips`). A gate call followed by a concurrent group
  is 2; Kraken and Gemini, which must send one call after the other, count each call;
- **one diagnosis / (round trips × 200 ms)**: the overhead above the unavoidable latency (target ≤ 1.3);
- **20 diagnoses at once**: 20 users (distinct user ids), each with a key of their own, diagnosing at the same
  time on the process's pooled client, median of the batches after a warm-up batch, and its ratio to one
  diagnosis (target ≤ 2.0).

A real exchange's 20 users each have their own key, and KeyMedic runs one diagnosis of a key at a time
(`bot.diagnosis.flight`: diagnoses of the same key that start together wait for the first and take its
outcome), so 20 users sharing one key would collapse into one check. User *i* therefore pastes the sandbox's
`valid-<i+1>` key (`bot.sandbox.scenarios`: keys of their own, with their own secrets, that answer like
`valid`; the sandbox verifies each one's signature as it does every key's). Each user also keeps a sandbox
instance of their own (20 `serve_in_thread` servers in this process), as in the runs before distinct keys, so
the figures stay comparable: the client's requests go to `KEYMEDIC_<EXCHANGE>_URL` as usual and a transport
wrapper sends user *i*'s to instance *i*'s port (the signed paths and Host header are unchanged). The single
run diagnoses `valid` again and again, and the diagnosis limits (5 per key and per user and exchange in 10
minutes) would refuse its sixth diagnosis, so `KEYMEDIC_DIAGNOSIS_RATE_LIMIT`, `…_USER_LIMIT` and
`…_KEY_LIMIT` are raised for the measurement (restored after), and `reset_rate_limits()` runs between runs.

Every diagnosis must come back without an `unavailable` outcome and without a failed item (items the exchange
cannot report stay `unknown`); the figure "diagnoses that did not pass" counts those that did not, and any
makes the run suspect. The sandbox runs in threads of this process, sharing the CPU with the client.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scripts.bench.figures import Figure
from scripts.bench.registry import BenchContext, measurement
from scripts.bench.stats import percentile

if TYPE_CHECKING:
    import httpx

__all__ = ["diagnosis", "dependent_round_trips", "ExchangeResult", "LATENCY_S", "PARALLEL_USERS"]

LATENCY_S = 0.2
PARALLEL_USERS = 20
TARGET_LATENCY_RATIO = 1.3
TARGET_PARALLEL_RATIO = 2.0
RATE_LIMIT_FOR_MEASUREMENT = "1000"

# Which sandbox instance the current task's requests go to (None: the one `KEYMEDIC_<EXCHANGE>_URL` names).
_SLOT: contextvars.ContextVar[int | None] = contextvars.ContextVar("bench_sandbox_slot", default=None)


def dependent_round_trips(intervals: Sequence[tuple[float, float]]) -> int:
    """The longest chain of requests each of which started after the previous one ended.

    `intervals` are (sent, answered) times of the requests one diagnosis made. Requests that overlap ran
    concurrently and count once; requests that follow each other count each. The largest set of pairwise
    non-overlapping intervals (greedy by earliest end) is that chain's length: the number of round trips
    on the critical path.
    """
    chain = 0
    last_end = float("-inf")
    for start, end in sorted(intervals, key=lambda interval: interval[1]):
        if end < start:
            raise ValueError(f"a request cannot be answered before it is sent: {(start, end)}")
        if start >= last_end:
            chain += 1
            last_end = end
    return chain


@dataclass
class ExchangeResult:
    """What the measurement found for one exchange."""

    exchange: str
    single_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    chains: list[int] = field(default_factory=list)
    parallel_s: list[float] = field(default_factory=list)
    not_passed: int = 0

    @property
    def single_ms(self) -> float:
        return percentile(self.single_s, 50) * 1000

    @property
    def chain(self) -> int:
        # The same on every run of a healthy client; the longest seen if a retry ever added one.
        return max(self.chains)

    @property
    def latency_ratio(self) -> float:
        return self.single_ms / (self.chain * LATENCY_S * 1000)

    @property
    def parallel_ms(self) -> float:
        return percentile(self.parallel_s, 50) * 1000

    @property
    def parallel_ratio(self) -> float:
        return self.parallel_ms / self.single_ms


def _passed(result: Any) -> bool:
    from bot.types.diagnosis import Status

    return result.unavailable is None and all(o.status is not Status.FAIL for o in result.items)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _instrumented_client(ports: Sequence[int]) -> tuple[httpx.AsyncClient, dict[int, list[float]]]:
    """KeyMedic's own pooled client (`new_client`, the one `shared_client` makes), with an event hook that
    records each request's (sent, answered) times, and user slot routing to the sandbox instances."""
    import httpx

    from bot.exchanges._http import new_client

    spans: dict[int, list[float]] = {}

    async def on_request(request: httpx.Request) -> None:
        spans[id(request)] = [time.monotonic(), float("nan")]

    async def on_response(response: httpx.Response) -> None:
        span = spans.get(id(response.request))
        if span is not None:
            span[1] = time.monotonic()

    class SlotRouting(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self._inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            slot = _SLOT.get()
            if slot is not None:
                request.url = request.url.copy_with(port=ports[slot])
            return await self._inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self._inner.aclose()

    client = new_client()
    client.event_hooks = {"request": [on_request], "response": [on_response]}
    # Wrap the client's own transport, so the pool limits stay exactly those of `new_client`.
    client._transport = SlotRouting(client._transport)  # noqa: SLF001
    return client, spans


async def _measure_exchange(exchange: str, ports: Sequence[int], runs: int, batches: int) -> ExchangeResult:
    from bot.diagnosis.service import diagnose, reset_rate_limits
    from bot.sandbox.scenarios import credentials_for
    from bot.types.credentials import Credentials

    credentials = Credentials.from_mapping(credentials_for(exchange, "valid"))
    result = ExchangeResult(exchange)
    client, spans = _instrumented_client(ports)
    async with client:
        # User i's own key (module docstring): one per sandbox instance.
        own_keys = [
            Credentials.from_mapping(credentials_for(exchange, f"valid-{slot + 1}"))
            for slot in range(len(ports))
        ]

        async def one(user: str, key: Credentials = credentials) -> bool:
            return _passed(await diagnose(exchange, key, client=client, user_id=user))

        reset_rate_limits()
        await one("bench-warmup")
        for run in range(runs):
            reset_rate_limits()
            spans.clear()
            started = time.monotonic()
            ok = await one(f"bench-single-{run}")
            result.single_s.append(time.monotonic() - started)
            result.not_passed += not ok
            intervals = [(start, end) for start, end in spans.values() if not math.isnan(end)]
            result.requests.append(len(spans))
            result.chains.append(dependent_round_trips(intervals))

        async def user(slot: int, batch: int) -> bool:
            _SLOT.set(slot)  # this task's context only
            return await one(f"bench-user-{batch}-{slot}", own_keys[slot])

        for batch in range(batches + 1):  # batch 0 warms the pool up and is left out
            reset_rate_limits()
            started = time.monotonic()
            oks = await asyncio.gather(*(user(slot, batch) for slot in range(len(ports))))
            if batch > 0:
                result.parallel_s.append(time.monotonic() - started)
                result.not_passed += sum(not ok for ok in oks)
    reset_rate_limits()
    return result


def _figures(results: Sequence[ExchangeResult], skipped: Sequence[str]) -> list[Figure]:
    note = f"not measured, out of time: {', '.join(skipped)}" if skipped else ""
    figures: list[Figure] = []
    latency = f"{LATENCY_S * 1000:.0f} ms"
    for r in results:
        figures += [
            Figure(f"{r.exchange}: one diagnosis, median", "ms", r.single_ms),
            Figure(f"{r.exchange}: requests sent", "count", float(max(r.requests))),
            Figure(f"{r.exchange}: dependent round trips", "count", float(r.chain)),
            Figure(f"{r.exchange}: one / (round trips × {latency})", "×", r.latency_ratio),
            Figure(f"{r.exchange}: {PARALLEL_USERS} diagnoses at once", "ms", r.parallel_ms),
            Figure(f"{r.exchange}: {PARALLEL_USERS} at once / one", "×", r.parallel_ratio),
        ]
    if results:
        worst_latency = max(results, key=lambda r: r.latency_ratio)
        worst_parallel = max(results, key=lambda r: r.parallel_ratio)
        figures += [
            Figure(
                f"worst one / round trips ({worst_latency.exchange}), target ≤ {TARGET_LATENCY_RATIO}",
                "×",
                worst_latency.latency_ratio,
                note=note,
            ),
            Figure(
                f"worst {PARALLEL_USERS} at once / one ({worst_parallel.exchange}), "
                f"target ≤ {TARGET_PARALLEL_RATIO}",
                "×",
                worst_parallel.parallel_ratio,
                note=note,
            ),
        ]
    figures.append(
        Figure("diagnoses that did not pass, all runs", "count", float(sum(r.not_passed for r in results)))
    )
    return figures


@measurement("diagnosis")
def diagnosis(context: BenchContext) -> list[Figure]:
    """One diagnosis and 20 at once (20 users, 20 keys) per exchange, against the sandbox with 200 ms per
    answer."""
    from bot.diagnosis.service import LIVE_EXCHANGES
    from bot.sandbox.server import serve_in_thread

    deadline = time.monotonic() + context.budget_s
    runs, batches = (3, 1) if context.quick else (10, 3)
    results: list[ExchangeResult] = []
    skipped: list[str] = []
    with ExitStack() as stack:
        urls = [stack.enter_context(serve_in_thread(latency_s=LATENCY_S)) for _ in range(PARALLEL_USERS)]
        ports = [int(url.rsplit(":", 1)[1]) for url in urls]
        env = {f"KEYMEDIC_{exchange.upper()}_URL": f"{urls[0]}/{exchange}" for exchange in LIVE_EXCHANGES}
        # Every window a diagnosis counts against (per user and exchange, per user, per key: issue 15).
        for name in ("RATE_LIMIT", "USER_LIMIT", "KEY_LIMIT"):
            env[f"KEYMEDIC_DIAGNOSIS_{name}"] = RATE_LIMIT_FOR_MEASUREMENT
        with _environment(env):
            for index, exchange in enumerate(LIVE_EXCHANGES):
                # An exchange takes about (runs + batches + 2) × 0.5 s; start one only if it fits.
                if time.monotonic() + (runs + batches + 2) * 0.6 > deadline:
                    skipped = list(LIVE_EXCHANGES[index:])
                    break
                results.append(asyncio.run(_measure_exchange(exchange, ports, runs, batches)))
    if not results:
        raise TimeoutError(f"no exchange fits in the time budget of {context.budget_s:.0f} s")
    return _figures(results, skipped)
