"""`keymedic run`'s supervisor (`bot.launcher.supervise`): a child that dies or hangs is restarted with
backoff while the others keep serving; one that keeps crashing makes it give up with the reason; Ctrl-C
stops everything (issue 19). Real child processes: small HTTP servers and a process that exits at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot import launcher
from bot.launcher import Service, Standby, free_port, http_ok
from bot.standby import PROMOTE_DIR_ENV, READY_LINE

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "RESTART_BACKOFF_S", (0.2, 0.4, 0.8))
    monkeypatch.setattr(launcher, "LIVENESS_INTERVAL_S", 0.3)
    monkeypatch.setattr(launcher, "LIVENESS_TIMEOUT_S", 0.3)
    monkeypatch.setattr(launcher, "STOP_GRACE_S", 2.0)


def _server(name: str) -> Service:
    port = free_port()
    return Service(
        name=name,
        argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        url=f"http://127.0.0.1:{port}",
        ready=http_ok(f"http://127.0.0.1:{port}/"),
        live_path="/",
    )


def _answers(service: Service) -> bool:
    try:
        return httpx.get(service.url + "/", timeout=0.5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _until(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def _supervise_while(services: list[Service], tmp_path: Path, scenario: Callable[[], None]) -> int:
    """Run the supervisor in this (main) thread while `scenario` runs beside it, then press Ctrl-C."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _until(lambda: all(s.process is not None for s in services) and all(map(_answers, services)), 30)
            scenario()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failure.append(error)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=run)
    thread.start()
    code = launcher.supervise(services, dict(os.environ), tmp_path / "logs", "up")
    thread.join()
    if failure:
        raise failure[0]
    return code


def test_a_killed_child_is_back_within_seconds_and_the_others_keep_serving(tmp_path: Path) -> None:
    victim, bystander = _server("victim"), _server("bystander")
    measured: dict[str, float] = {}

    def scenario() -> None:
        assert victim.process is not None and bystander.process is not None
        bystander_pid = bystander.process.pid
        os.killpg(victim.process.pid, signal.SIGKILL)
        started = time.monotonic()
        _until(lambda: not _answers(victim), 5)
        assert _answers(bystander)
        _until(lambda: _answers(victim), 10)
        measured["back_s"] = time.monotonic() - started
        assert bystander.process.pid == bystander_pid  # never restarted

    assert _supervise_while([victim, bystander], tmp_path, scenario) == 0
    assert measured["back_s"] < 10
    assert all(s.process is not None and s.process.poll() is not None for s in (victim, bystander))


def test_a_hung_child_is_killed_and_restarted(tmp_path: Path) -> None:
    victim, bystander = _server("victim"), _server("bystander")

    def scenario() -> None:
        assert victim.process is not None
        hung = victim.process.pid
        os.kill(hung, signal.SIGSTOP)
        _until(lambda: victim.process is not None and victim.process.pid != hung and _answers(victim), 15)
        assert _answers(bystander)

    assert _supervise_while([victim, bystander], tmp_path, scenario) == 0


def test_a_child_that_keeps_crashing_makes_the_run_give_up_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crasher = Service(
        name="crasher",
        argv=[
            sys.executable,
            "-c",
            "import sys, time; print('crasher: ready', flush=True); time.sleep(0.2); sys.exit(3)",
        ],
        url="-",
        ready_line="crasher: ready",
    )
    bystander = _server("bystander")
    started = time.monotonic()
    assert launcher.supervise([bystander, crasher], dict(os.environ), tmp_path / "logs", "up") == 1
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert f"crasher stopped {launcher.CRASH_LIMIT} times" in err and "giving up" in err
    assert "last exit code 3" in err
    assert "restarting it in 0.2 s" in err  # each crash was logged with its backoff
    assert took < 15
    assert bystander.process is not None and bystander.process.poll() is not None  # everything stopped


# A child that keeps the standby contract (bot/standby.py) as Rasa does (rasa_plugins/standby.py): started as
# a standby it says it is loaded and binds its port only once promoted; otherwise it serves at once.
STANDBY_CHILD = f"""
import http.server, os, pathlib, sys, time
folder = os.environ.get({PROMOTE_DIR_ENV!r}, "")
if folder:
    time.sleep(float(sys.argv[2]))  # loading
    print({READY_LINE!r}, flush=True)
    mine = pathlib.Path(folder) / f"promote.{{os.getpid()}}"
    while not mine.exists():
        time.sleep(0.05)
handler = http.server.SimpleHTTPRequestHandler
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


def _with_standby(name: str, tmp_path: Path, load_s: float = 0.3) -> Service:
    port = free_port()
    return Service(
        name=name,
        argv=[sys.executable, "-c", STANDBY_CHILD, str(port), str(load_s)],
        url=f"http://127.0.0.1:{port}",
        ready=http_ok(f"http://127.0.0.1:{port}/"),
        live_path="/",
        standby=Standby(tmp_path / "run"),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_child_with_a_standby_is_replaced_by_it_at_once_and_a_new_standby_follows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim, bystander = _with_standby("victim", tmp_path), _server("bystander")
    measured: dict[str, float] = {}
    pids: list[int] = []

    def scenario() -> None:
        assert victim.standby is not None and bystander.process is not None
        _until(victim.standby.loaded, 10)
        assert victim.process is not None and victim.standby.process is not None
        killed, standby_pid, bystander_pid = (
            victim.process.pid,
            victim.standby.process.pid,
            bystander.process.pid,
        )
        os.killpg(killed, signal.SIGKILL)
        started = time.monotonic()
        _until(lambda: _answers(victim), 10)
        measured["back_s"] = time.monotonic() - started
        assert victim.process.pid == standby_pid  # the standby took over; no new start
        # A new standby once the promoted one serves, loaded in its turn.
        _until(lambda: victim.standby is not None and victim.standby.loaded(), 10)
        assert victim.standby.process is not None and victim.standby.process.pid not in (killed, standby_pid)
        assert bystander.process.pid == bystander_pid and _answers(bystander)
        pids.extend([victim.process.pid, victim.standby.process.pid])

    assert _supervise_while([victim, bystander], tmp_path, scenario) == 0
    # No pause before the promotion: the supervisor looks every 0.25 s and the standby polls every 0.05 s.
    assert measured["back_s"] < 1.5
    err = capsys.readouterr().err
    assert "victim stopped with code -9; its standby takes over" in err
    # Ctrl-C stopped the serving process and its standby alike.
    assert not any(map(_alive, pids))


def test_a_hung_child_with_a_standby_is_killed_and_replaced_by_it(tmp_path: Path) -> None:
    victim = _with_standby("victim", tmp_path)

    def scenario() -> None:
        assert victim.standby is not None and victim.process is not None
        _until(victim.standby.loaded, 10)
        assert victim.standby.process is not None
        hung, standby_pid = victim.process.pid, victim.standby.process.pid
        os.kill(hung, signal.SIGSTOP)
        _until(
            lambda: victim.process is not None and victim.process.pid == standby_pid and _answers(victim), 15
        )

    assert _supervise_while([victim], tmp_path, scenario) == 0


def test_a_standby_that_keeps_crashing_makes_the_run_give_up_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    crashing_standby = (
        f"import os, sys, http.server\n"
        f"if os.environ.get({PROMOTE_DIR_ENV!r}): sys.exit(4)\n"
        f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)"
        f".serve_forever()\n"
    )
    service = Service(
        name="rasa",
        argv=[sys.executable, "-c", crashing_standby],
        url=f"http://127.0.0.1:{port}",
        ready=http_ok(f"http://127.0.0.1:{port}/"),
        live_path="/",
        standby=Standby(tmp_path / "run"),
    )
    assert launcher.supervise([service], dict(os.environ), tmp_path / "logs", "up") == 1
    err = capsys.readouterr().err
    assert f"rasa's standby stopped {launcher.CRASH_LIMIT} times" in err and "last exit code 4" in err
    assert service.process is not None and service.process.poll() is not None  # everything stopped
