"""Clocks a test moves by hand, for code that takes its clock as an argument: time passes only when the test
says so, whatever the machine's load."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["FakeClock", "FakeWallClock"]


class FakeClock:
    """A monotonic clock (`time.monotonic`'s shape): seconds as a float, moved with `clock.now += 5`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeWallClock:
    """A wall clock (`datetime.now(timezone.utc)`'s shape), moved with `clock.now += timedelta(...)`."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now
