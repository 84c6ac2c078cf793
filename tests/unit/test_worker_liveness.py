"""The job worker's heartbeat (bot/worker_liveness.py) and the supervisor acting on it (bot/launcher.py):
a frozen process's file goes stale, a stuck job stops the beats, and the supervisor kills and restarts a
real process whose heartbeat went stale."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bot import worker_liveness
from bot.launcher import Service, Supervisor, _is_ready, _start
from bot.worker_liveness import Heartbeat, alive, main
from tests.support.clock import FakeClock
from tests.support.waiting import eventually


def test_a_beating_worker_is_alive_and_a_silent_one_goes_stale(tmp_path: Path) -> None:
    path = tmp_path / "run" / "worker.heartbeat"
    assert not alive(path) and main([str(path)]) == 1
    heartbeat = Heartbeat(path, every_s=0.05)
    heartbeat.start()
    try:
        first = path.stat().st_mtime_ns
        eventually(
            lambda: path.stat().st_mtime_ns > first, "a beat after the first", timeout=10, interval=0.01
        )
        assert alive(path) and main([str(path)]) == 0
    finally:
        heartbeat.stop()
    # The last beat, made a second old: stopped, nothing freshens it.
    last = time.time() - 1
    os.utime(path, (last, last))
    assert not alive(path, stale_after_s=0.2)
    assert main([str(path), "0.2"]) == 1


def test_a_job_running_past_the_bound_stops_the_beats_and_its_end_resumes_them(tmp_path: Path) -> None:
    path = tmp_path / "worker.heartbeat"
    clock = FakeClock()
    heartbeat = Heartbeat(path, every_s=0.05, job_stuck_s=0.2, clock=clock)
    assert heartbeat.beat()
    heartbeat.job_started("job-1")
    assert heartbeat.beat()  # a job in its first moments is no sign of trouble
    clock.now += 0.3
    written = path.stat().st_mtime_ns
    assert not heartbeat.beat()
    assert path.stat().st_mtime_ns == written
    heartbeat.job_ended("job-1")
    assert heartbeat.beat() and heartbeat.oldest_job_s() == 0.0


# A stand-in for `keymedic worker` with the real Heartbeat: beats, says it is ready, then idles.
BEATER = """
import sys, time
from pathlib import Path
from bot.worker_liveness import Heartbeat
Heartbeat(Path(sys.argv[1]), every_s=0.1).start()
print("worker: ready", flush=True)
while True:
    time.sleep(1)
"""


def test_the_supervisor_kills_and_restarts_a_worker_whose_heartbeat_went_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_liveness, "STALE_AFTER_S", 0.5)
    monkeypatch.setattr("bot.launcher.LIVENESS_INTERVAL_S", 0.2)
    path = tmp_path / "worker.heartbeat"
    service = Service(
        name="worker",
        argv=[sys.executable, "-c", BEATER, str(path)],
        url="-",
        ready_line="worker: ready",
        heartbeat=path,
    )
    supervisor = Supervisor([service], dict(os.environ), tmp_path)
    _start(service, dict(os.environ), tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not _is_ready(service):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert service.process is not None
        first = service.process.pid
        # Alive and beating: looked at for a while, it is left alone.
        for _ in range(10):
            supervisor.look()
            time.sleep(0.1)
        assert service.process.pid == first and service.process.poll() is None
        os.killpg(first, signal.SIGSTOP)
        stopped = time.monotonic()
        while service.process.pid == first or not _is_ready(service):
            assert time.monotonic() - stopped < 30, "the frozen worker was not replaced"
            supervisor.look()
            time.sleep(0.05)
        assert service.process.poll() is None
        # Killed after the bound (0.5 s) and three failed checks, not before.
        assert time.monotonic() - stopped > 0.5
    finally:
        if service.process is not None and service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
