"""Pure statistics over latency samples: percentiles, means, a latency summary. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LatencySummary", "WindowMeans", "percentile", "mean", "summarize", "window_means"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; an empty sequence is an error, not zero."""
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles of one phase, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float


def summarize(latencies_s: Sequence[float]) -> LatencySummary | None:
    """p50/p95/p99/mean in ms of latencies given in seconds; None when there are none."""
    if not latencies_s:
        return None
    ms = [value * 1000 for value in latencies_s]
    return LatencySummary(
        count=len(ms),
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        mean_ms=mean(ms),
    )


@dataclass(frozen=True)
class WindowMeans:
    """Mean latency (ms) of the first and the last `window` turns of a conversation, and their turn ranges."""

    first_ms: float
    last_ms: float
    first_turns: tuple[int, int]  # 1-based, inclusive
    last_turns: tuple[int, int]

    @property
    def growth(self) -> float:
        """How many times slower the last turns are than the first ones."""
        return self.last_ms / self.first_ms


def window_means(latencies_s: Sequence[float | None], window: int) -> WindowMeans | None:
    """Means of the first and last `window` turns (failed turns, None, left out); None if either is empty.

    Averaging a window rather than comparing two single turns keeps one slow turn (a GC pause, a neighbour's
    burst of CPU) from deciding the figure.
    """
    if window < 1 or len(latencies_s) < 2 * window:
        return None
    first = [value * 1000 for value in latencies_s[:window] if value is not None]
    last = [value * 1000 for value in latencies_s[-window:] if value is not None]
    if not first or not last:
        return None
    total = len(latencies_s)
    return WindowMeans(
        first_ms=mean(first),
        last_ms=mean(last),
        first_turns=(1, window),
        last_turns=(total - window + 1, total),
    )
