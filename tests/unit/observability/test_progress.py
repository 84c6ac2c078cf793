"""Progress: a redrawn line on a terminal, a few plain lines elsewhere, always one final line."""

from __future__ import annotations

import io

from bot.observability.progress import Progress
from tests.support.clock import FakeClock


def test_plain_output_prints_each_tenth_of_a_known_total_once_and_a_final_line() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("sync", total=1000, unit="rows", stream=out, tty=False, clock=clock)
    for done in range(0, 1001, 10):
        clock.now += 0.01
        progress.update(done)
    progress.finish("done")
    lines = out.getvalue().splitlines()
    assert len(lines) == 12  # 0%, 10%, ..., 100%, and the final line
    assert lines[5].startswith("sync: 500/1,000 rows (50%)")
    assert lines[-1].startswith("sync: done (")
    assert "\r" not in out.getvalue()


def test_plain_output_without_a_total_prints_at_most_every_interval() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("report", stream=out, tty=False, clock=clock, plain_every_s=10)
    for done in range(1, 301):
        clock.now = done * 0.1  # 30 s in all
        progress.update(done)
    assert len(out.getvalue().splitlines()) == 3  # at 0.1 s, 10.1 s, 20.1 s


def test_a_terminal_gets_one_line_redrawn_in_place_then_the_final_line() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("train", stream=out, tty=True, clock=clock, redraw_s=0.5)
    for done in range(1, 51):
        clock.now = done * 0.25
        progress.update(done)
    progress.finish("model ready")
    text = out.getvalue()
    assert text.count("\n") == 1  # only the final line ends a line
    assert text.count("\r\033[K") == 26  # 25 redraws (every other update) and the final line replacing them
    assert text.endswith("train: model ready (12.5 s)\n")
