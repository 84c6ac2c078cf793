"""The soak run's bookkeeping (`scripts.bench.soak`): what counts as a lost turn, how long it runs, and a
process's memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.bench.soak import DEFAULT_MINUTES, _rss_mib, lost_turns, minutes_from_environment


def test_every_answered_message_stored_in_order_is_no_loss() -> None:
    assert lost_turns(["hi", "kraken", "hi"], ["hi", "kraken", "hi"]) == 0


def test_a_message_stored_although_the_user_saw_it_fail_is_no_loss() -> None:
    # Rasa took it, then the client gave up waiting: stored, not answered, and sent again.
    assert lost_turns(["hi", "kraken"], ["hi", "kraken", "kraken"]) == 0


def test_an_answered_message_missing_from_the_history_is_lost() -> None:
    assert lost_turns(["hi", "kraken", "hi"], ["hi", "hi"]) == 1
    assert lost_turns(["hi", "hi"], ["hi"]) == 1


def test_the_soak_runs_30_minutes_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYMEDIC_SOAK_MINUTES", raising=False)
    assert minutes_from_environment(quick=False) == DEFAULT_MINUTES == 30
    assert minutes_from_environment(quick=True) == 2
    monkeypatch.setenv("KEYMEDIC_SOAK_MINUTES", "5")
    assert minutes_from_environment(quick=False) == 5


def test_a_process_without_children_is_counted_once() -> None:
    # `descendants` includes the root: adding it again had doubled every process's figure. Measured on a
    # child of its own (about 60 MiB, no children), not on pytest, which has servers as children in a full
    # run.
    holder = "import time; b = bytearray(60 << 20); print(flush=True); time.sleep(60)"
    child = subprocess.Popen(
        [sys.executable, "-c", holder],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"\n"  # allocated
        resident_mib = next(
            int(line.split()[1]) / 1024
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        assert resident_mib > 50
        assert abs(_rss_mib(child.pid) - resident_mib) < resident_mib * 0.2
    finally:
        child.kill()
        child.communicate()  # reaps it and closes its pipe
