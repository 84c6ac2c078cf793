"""The sandbox's account history: deterministic, of any size, generated row by row when asked for.

Row `i` of an exchange's history (0 is the oldest) is a pure function of the exchange, `i` and the current UTC
day: its amounts and ids come from SHA-256 of `"<exchange>/<i>/<what>"`, its time from its position. So a
page costs only its own rows, 100,000 rows cost no memory, the same key gets the same history on every
machine, and two syncs on the same day see identical records.

Times: the rows are spread evenly over the 80 days before the start of the current UTC day (by the sandbox's
clock), so every row sits inside OKX's 3-month archive and Binance's 90-day windows, and nothing is dated in
the future. A row's time changes only when the day changes; its id never does.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Final

__all__ = ["HistoryBook", "DAY_MS", "SPAN_DAYS", "DEFAULT_HISTORY_SIZE"]

DAY_MS: Final = 86_400_000
SPAN_DAYS: Final = 80
DEFAULT_HISTORY_SIZE: Final = 40


class HistoryBook:
    """`size` rows of one exchange's history, as of the sandbox clock's `now_s`."""

    def __init__(self, exchange: str, size: int, now_s: float) -> None:
        self.exchange = exchange
        self.size = max(0, size)
        self.end_ms = int(now_s * 1000) // DAY_MS * DAY_MS
        self.start_ms = self.end_ms - SPAN_DAYS * DAY_MS
        self.step_ms = max(1, SPAN_DAYS * DAY_MS // max(1, self.size))

    def ts_ms(self, i: int) -> int:
        """Row `i`'s time in epoch milliseconds; strictly increasing with `i`."""
        return self.start_ms + i * self.step_ms + self.number(i, "jitter", 0, min(999, self.step_ms - 1))

    def first_at_or_after(self, ts_ms: int) -> int:
        """The smallest row index whose time is ≥ `ts_ms` (`size` when there is none)."""
        lo, hi = 0, self.size
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ts_ms(mid) < ts_ms:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def digest(self, i: int, what: str) -> bytes:
        return hashlib.sha256(f"{self.exchange}/{i}/{what}".encode()).digest()

    def number(self, i: int, what: str, lo: int, hi: int) -> int:
        """A deterministic whole number in [lo, hi] for row `i`."""
        if hi <= lo:
            return lo
        return lo + int.from_bytes(self.digest(i, what)[:8], "big") % (hi - lo + 1)

    def amount(self, i: int, what: str, lo: str, hi: str, places: int = 8) -> Decimal:
        """A deterministic amount in [lo, hi] with `places` decimals."""
        scale = Decimal(10) ** places
        low, high = int(Decimal(lo) * scale), int(Decimal(hi) * scale)
        return Decimal(self.number(i, what, low, high)) / scale

    def hex(self, i: int, what: str, length: int) -> str:
        return (self.digest(i, what) + self.digest(i, what + "+")).hex()[:length]

    def choice(self, i: int, what: str, options: tuple[str, ...]) -> str:
        return options[self.number(i, what, 0, len(options) - 1)]


def fixed(value: Decimal, places: int = 8) -> str:
    """An amount as the exchanges print it: fixed decimals, no exponent (`"0.05000000"`)."""
    return f"{value:.{places}f}"
