"""Progress of long work (training, a big resync, the report): a live line on a terminal, plain lines in CI.

    progress = Progress("sync kraken", total=None)
    progress.update(2_000, "staged")        # terminal: redrawn in place; elsewhere: a line now and then
    progress.finish("synced: 2,000 added")  # always one clear final line

On a terminal the line is redrawn at most `redraw_s` apart (carriage return, no scrolling). Anywhere else
(CI logs, a file, a pipe) a plain line is printed at most every `plain_every_s` seconds or when another tenth
of a known total is done, so a 100,000-row resync writes a dozen lines, not a thousand.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Final

__all__ = ["Progress"]

_CLEAR: Final = "\r\033[K"


class Progress:
    """Reports `done` (of `total`, when known) for one named piece of work."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "",
        stream: IO[str] | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        redraw_s: float = 0.1,
        plain_every_s: float = 10.0,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty() if tty is None else tty
        self._clock = clock
        self._redraw_s = redraw_s
        self._plain_every_s = plain_every_s
        self._started = clock()
        self._last_output = float("-inf")
        self._last_tenth = -1
        self._done = 0
        self._live = False

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def _describe(self, done: int, note: str | None) -> str:
        unit = f" {self.unit}" if self.unit else ""
        amount = f"{done:,}{unit}" if self.total is None else f"{done:,}/{self.total:,}{unit}"
        if self.total:
            amount += f" ({100 * done / self.total:.0f}%)"
        elapsed = self.elapsed_s
        rate = f", {done / elapsed:,.0f}{unit}/s" if elapsed >= 1 and done else ""
        return f"{self.label}: {amount}{f' {note}' if note else ''} [{elapsed:.0f} s{rate}]"

    def update(self, done: int, note: str | None = None, *, force: bool = False) -> None:
        """`done` units are done so far; `force` prints a plain line now (a milestone, e.g. a new step)."""
        self._done = done
        now = self._clock()
        if self._tty:
            if now - self._last_output >= self._redraw_s:
                self._stream.write(_CLEAR + self._describe(done, note))
                self._stream.flush()
                self._last_output = now
                self._live = True
            return
        tenth = int(10 * done / self.total) if self.total else -1
        if force or tenth > self._last_tenth or now - self._last_output >= self._plain_every_s:
            self._stream.write(self._describe(done, note) + "\n")
            self._stream.flush()
            self._last_output = now
            self._last_tenth = max(tenth, self._last_tenth)

    def step(self, note: str | None = None) -> None:
        """One more unit is done."""
        self.update(self._done + 1, note)

    def finish(self, summary: str) -> None:
        """The final line: `label: summary (N s)`, replacing the live line on a terminal."""
        prefix = _CLEAR if self._tty and self._live else ""
        self._stream.write(f"{prefix}{self.label}: {summary} ({self.elapsed_s:.1f} s)\n")
        self._stream.flush()
