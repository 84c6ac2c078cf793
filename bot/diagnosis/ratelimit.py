"""An in-process sliding-window limit on diagnoses.

Why: KeyMedic must be no oracle for stolen keys (someone trying pasted keys until one works), and repeated
failed attempts get a key locked out on some exchanges (Kraken, reference/exchanges.md §0.3). So diagnoses are
limited per user and exchange, and per key whoever submits it. In-process is enough for one action server;
several replicas each keep their own window (a shared store would be the next step).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most `limit` events per `window_s` seconds for each key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: dict[Hashable, deque[float]] = {}

    def acquire(self, keys: tuple[Hashable, ...], *, limit: int, window_s: float) -> float:
        """Record one event under every key and return 0, or return the seconds to wait (nothing recorded)
        when any key is at its limit."""
        now = self._clock()
        with self._lock:
            wait = 0.0
            for key in keys:
                events = self._events.setdefault(key, deque())
                while events and events[0] <= now - window_s:
                    events.popleft()
                if len(events) >= limit:
                    wait = max(wait, events[0] + window_s - now)
            if wait > 0:
                return wait
            for key in keys:
                self._events[key].append(now)
            return 0.0

    def reset(self) -> None:
        """Forget every event (tests, or an operator clearing a lock-out)."""
        with self._lock:
            self._events.clear()
