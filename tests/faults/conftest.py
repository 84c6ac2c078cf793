"""One whole local run (sandbox, actions, worker, web, Rasa), started once for the fault suite and kept alive
by `keymedic run`'s own supervisor (`bot.launcher.Supervisor`), looking every 0.25 s in a thread as it does
in the launcher's main loop. Each test breaks one thing, asserts what the user sees and within how long,
that no turn is lost or duplicated, and how long the run takes to recover (docs/reliability.md)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.demo import prepare_database
from bot.launcher import (
    Service,
    Supervisor,
    child_environment,
    isolated_environment,
    isolated_settings,
    local_services,
    start_services,
    stop_services,
)
from bot.training import ensure_model

# What a user must hear within, whatever broke (issue 19).
ANSWER_WITHIN_S = 10.0
# A killed child with a port is serving again within (Rasa, which loads its model, is measured apart).
BACK_WITHIN_S = 10.0


@dataclass
class Turn:
    texts: list[str]
    seconds: float
    error: str = ""


@dataclass
class FaultStack:
    settings: Settings
    env: dict[str, str]
    services: list[Service]
    supervisor_errors: list[str] = field(default_factory=list)

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    def service(self, name: str) -> Service:
        [found] = [s for s in self.services if s.name == name]
        return found

    def pid(self, name: str) -> int:
        process = self.service(name).process
        assert process is not None and process.poll() is None, f"{name} is not running"
        return process.pid

    def say(self, sender: str, text: str, timeout: float = 60.0) -> Turn:
        """One message over the REST channel: the bot's texts and how long the user waited."""
        started = time.monotonic()
        try:
            response = httpx.post(
                f"{self.rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": text},
                timeout=timeout,
                trust_env=False,
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            return Turn([], time.monotonic() - started, type(error).__name__)
        texts = [str(reply.get("text") or "") for reply in response.json()]
        return Turn(texts, time.monotonic() - started)

    def user_messages(self, sender: str) -> list[str]:
        """Every user message the tracker store holds for `sender`, in order (the whole history)."""
        response = httpx.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.env["KEYMEDIC_RASA_TOKEN"], "include_events": "ALL"},
            timeout=30,
            trust_env=False,
        )
        response.raise_for_status()
        return [str(e.get("text")) for e in response.json()["events"] if e.get("event") == "user"]

    def answers(self, name: str) -> bool:
        service = self.service(name)
        if service.live_path is None:
            return service.process is not None and service.process.poll() is None
        try:
            url = f"{service.url}{service.live_path}"
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self, name: str) -> bool:
        """Whether `name` answers its readiness check (the supervisor's own liveness aside)."""
        service = self.service(name)
        return service.ready is None or service.ready()

    def hold_tracker_lock(self, seconds: float) -> Callable[[], None]:
        """Another writer holding the tracker database's write lock; returns its release."""
        connection = sqlite3.connect(
            self.env["KEYMEDIC_TRACKER_DB"], timeout=5, check_same_thread=False, isolation_level=None
        )
        connection.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(seconds, lambda: release())

        def release() -> None:
            timer.cancel()
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass

        timer.start()
        return release


def until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> float:
    """Seconds until `condition()` holds; fails the test after `timeout`."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < timeout, f"not within {timeout:.0f} s"
        time.sleep(step)
    return time.monotonic() - started


def pause(pid: int) -> None:
    os.killpg(pid, signal.SIGSTOP)


def resume(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass  # the supervisor killed it meanwhile


def kill(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    settings = isolated_settings(tmp_path_factory.mktemp("faults-var"))
    env = child_environment(settings, isolated_environment(settings.var_dir))
    prepare_database(settings)
    services = local_services(settings, ensure_model())
    log_dir = settings.var_dir / "logs"
    stack = FaultStack(settings, env, services)
    supervisor = Supervisor(services, env, log_dir)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                supervisor.look()
            except RuntimeError as error:
                stack.supervisor_errors.append(str(error))
                return
            stop.wait(0.25)

    watcher = threading.Thread(target=watch, name="supervisor", daemon=True)
    try:
        start_services(services, env, log_dir)
        watcher.start()
        yield stack
    finally:
        stop.set()
        watcher.join(timeout=5)
        for service in services:
            if service.process is not None:
                resume(service.process.pid)
        stop_services(services)


@pytest.fixture
def stack(fault_stack: FaultStack) -> Iterator[FaultStack]:
    """The shared run, checked healthy before and after each fault (a fault must not outlive its test)."""
    assert not fault_stack.supervisor_errors
    until(lambda: all(fault_stack.answers(s.name) for s in fault_stack.services), 180, 0.5)
    # And Rasa's standby loaded: a fault meets the run as an operator has it, not its standby's load.
    until(lambda: all(s.standby.loaded() for s in fault_stack.services if s.standby), 180, 0.5)
    yield fault_stack
    assert not fault_stack.supervisor_errors, fault_stack.supervisor_errors


def replies_of(turn: Turn) -> str:
    return " | ".join(turn.texts) or turn.error


__all__: list[Any] = []
