"""Sliding-window limits on live diagnoses, shared by every replica through Redis, or bounded in memory.

Why: KeyMedic must be no oracle for stolen keys (someone trying pasted keys until one works), and repeated
failed attempts get a key locked out on some exchanges (Kraken, reference/exchanges.md §0.3). So diagnoses are
limited per KeyMedic user and exchange, per user overall, and per key whoever submits it
(`bot.diagnosis.service`). The limits must hold across conversations (each Slack thread is a new one) and
across replicas (two action servers must not double them), so the windows live in Redis when one is
configured (`KEYMEDIC_REDIS_URL`): one Lua script checks and records every window of a diagnosis
atomically, with Redis's own clock, and each window expires with its last event.

Without Redis (a local run) they live in the process, in a store that forgets: events leave their window as
it slides, keys whose window is empty are dropped, and at most `max_keys` keys are kept (the least recently
used go first), so a stream of new keys cannot grow it without bound.

A store never sees a raw API key: the service names a key by an HMAC under a server key (`key_fingerprint`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Window", "LimitStore", "MemoryStore", "RedisStore", "key_fingerprint"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """At most `limit` events per `window_s` seconds under `key`."""

    key: str
    limit: int
    window_s: float


class LimitStore(Protocol):
    def acquire(self, windows: Sequence[Window]) -> float:
        """Record one event in every window and return 0, or return the seconds to wait (nothing recorded)
        when any window is full."""
        ...

    def reset(self) -> None:
        """Forget every event (tests, or an operator clearing a lock-out)."""
        ...


def key_fingerprint(server_key: bytes, exchange: str, api_key: str) -> str:
    """How a store names an exchange key: an HMAC, so what a store holds cannot be matched to a key by anyone
    without the server key (a plain hash of a known key would say whether it is being tried)."""
    return hmac.new(server_key, f"{exchange}\0{api_key}".encode(), hashlib.sha256).hexdigest()[:32]


class MemoryStore:
    """The windows of one process, bounded: expired events and empty keys are forgotten, and beyond
    `max_keys` keys the least recently used is dropped."""

    def __init__(self, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._events: OrderedDict[str, tuple[float, deque[float]]] = OrderedDict()  # key -> (window, times)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def acquire(self, windows: Sequence[Window]) -> float:
        now = self._clock()
        with self._lock:
            wait = 0.0
            for window in windows:
                events = self._live(window.key, window.window_s, now)
                if len(events) >= window.limit:
                    oldest = events[0] if events else now
                    wait = max(wait, oldest + window.window_s - now)
            if wait > 0:
                return wait
            for window in windows:
                events = self._live(window.key, window.window_s, now)
                events.append(now)
                self._events[window.key] = (window.window_s, events)
                self._events.move_to_end(window.key)
            self._evict(now)
            return 0.0

    def _live(self, key: str, window_s: float, now: float) -> deque[float]:
        _, events = self._events.get(key, (window_s, deque()))
        while events and events[0] <= now - window_s:
            events.popleft()
        return events

    def _evict(self, now: float) -> None:
        if len(self._events) <= self._max_keys:
            return
        # First the keys whose window has emptied (they limit nothing), then the least recently used.
        for key in [k for k, (w, events) in self._events.items() if not events or events[-1] <= now - w]:
            del self._events[key]
        while len(self._events) > self._max_keys:
            self._events.popitem(last=False)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()


# KEYS: one sorted set per window (members are events, scored by their time in ms).
# ARGV: an id for this event, then each window's limit and length in ms, in KEYS order.
# Returns 0 when the event was recorded in every window, else the ms to wait (nothing recorded).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local until_free = window
    if oldest[2] then until_free = tonumber(oldest[2]) + window - now end
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""


class RedisStore:
    """The windows in Redis, shared by every process that uses the same Redis and `prefix`."""

    def __init__(self, client: Any, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix.rstrip(":") + ":"
        self._script = client.register_script(_ACQUIRE)
        self._sequence = 0
        self._lock = threading.Lock()
        self._tag = hashlib.sha256(f"{time.time_ns()}{id(self)}".encode()).hexdigest()[:12]

    def _event_id(self) -> str:
        # Unique per event: two events in the same millisecond must both count.
        with self._lock:
            self._sequence += 1
            return f"{self._tag}:{self._sequence}"

    def acquire(self, windows: Sequence[Window]) -> float:
        args: list[Any] = [self._event_id()]
        for window in windows:
            args += [window.limit, max(1, math.ceil(window.window_s * 1000))]
        wait_ms = int(self._script(keys=[self._prefix + w.key for w in windows], args=args))
        return wait_ms / 1000.0

    def reset(self) -> None:
        for key in self._client.scan_iter(match=self._prefix + "*", count=500):
            self._client.delete(key)
