"""Both bots served the same way, through the launcher's `Service`, `start_services` and `stop_services`.

Each bot runs `rasa run --enable-api` on 127.0.0.1 with the REST channel and a SQL tracker store on a fresh
SQLite file, on free ports. KeyMedic brings every process of `bot.launcher.local_services` (its action server
and whatever else a local run has) after the same database preparation as `keymedic run`; the starter bot has
no custom actions, so it is Rasa alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.config import PROJECT_ROOT
from bot.launcher import (
    Service,
    child_environment,
    free_port,
    isolated_environment,
    isolated_settings,
    local_services,
    start_services,
    stop_services,
)
from scripts.bench.training import StarterProject

__all__ = ["Stack", "keymedic_stack", "starter_stack", "start", "stop", "free_port"]


@dataclass
class Stack:
    """The processes of one bot, their environment, and how long each took from start to ready."""

    bot: str
    services: list[Service]
    env: dict[str, str]
    log_dir: Path
    # Commands run once before the services start, as `keymedic run` does before starting its own.
    setup: list[list[str]] = field(default_factory=list)
    ready_s: dict[str, float] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    @property
    def rasa_url(self) -> str:
        return self.service("rasa").url

    def urls(self) -> dict[str, str]:
        return {s.name: s.url for s in self.services}

    def roots(self) -> dict[str, int]:
        """`"<bot>/<service>"` -> pid of each running service (the root of its process tree)."""
        return {
            f"{self.bot}/{s.name}": s.process.pid
            for s in self.services
            if s.process is not None and s.process.poll() is None
        }


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def keymedic_stack(workdir: Path, model: Path, base_env: Mapping[str, str]) -> Stack:
    """Every service of a local KeyMedic run, on free ports, with its state and logs in `workdir`.

    The logs go to `workdir/logs` because that is where a local run keeps them (`var/logs`), and the worker's
    readiness check reads its log from `<var dir>/logs`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    settings = isolated_settings(workdir)
    ports = {
        "RASA_PORT": settings.rasa_port,
        "ACTIONS_PORT": settings.actions_port,
        "WEB_PORT": settings.web_port,
        "SANDBOX_PORT": settings.sandbox_port,
    }
    # Every URL KeyMedic's processes use is this stack's own: a developer's exported KEYMEDIC_KRAKEN_URL,
    # KEYMEDIC_DATABASE_URL or KEYMEDIC_JOBS_URL must not send the benchmark to another sandbox or database.
    # (child_environment then points each exchange at this stack's sandbox.)
    base = {
        **isolated_environment(workdir, base_env),
        "KEYMEDIC_VAR_DIR": str(workdir),
        "KEYMEDIC_DATABASE_URL": settings.database_url,
    }
    env = child_environment(settings, base)
    # child_environment only sets defaults, and `make` exports RASA_PORT=5005 & co; the free ports must win.
    env.update({name: str(port) for name, port in ports.items()})
    keymedic = str(Path(sys.executable).with_name("keymedic"))
    return Stack(
        bot="keymedic",
        services=local_services(settings, model),
        env=env,
        log_dir=workdir / "logs",
        # `keymedic run` migrates the database and loads the demo user before it starts anything.
        setup=[[keymedic, "seed-demo"]],
    )


def starter_stack(workdir: Path, project: StarterProject, base_env: Mapping[str, str]) -> Stack:
    """Rasa's starter bot served like KeyMedic's Rasa: same flags, REST channel, SQL tracker on SQLite."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoints, credentials = workdir / "endpoints.yml", workdir / "credentials.yml"
    # json.dumps of a path is a valid YAML double-quoted scalar.
    endpoints.write_text(
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: {json.dumps(str(workdir / "tracker.db"))}\n'
    )
    credentials.write_text("rest:\n")
    rasa = str(Path(sys.executable).with_name("rasa"))
    service = Service(
        name="rasa",
        argv=[
            rasa,
            "run",
            "--enable-api",
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            str(project.model),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(credentials),
        ],  # fmt: skip
        ready=_http_ok(f"http://127.0.0.1:{port}/"),
        url=f"http://127.0.0.1:{port}",
    )
    return Stack(bot="starter", services=[service], env=dict(base_env), log_dir=workdir / "logs")


def _run_setup(stack: Stack) -> None:
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    for command in stack.setup:
        log = stack.log_dir / f"setup-{Path(command[0]).name}-{command[1]}.log"
        with open(log, "wb") as out:
            completed = subprocess.run(
                command, cwd=PROJECT_ROOT, env=stack.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command[1:])} failed with code {completed.returncode}; see {log}")


def start(stack: Stack) -> None:
    """Run the setup commands, then start the services in order, timing each from start to ready.

    One service at a time, so a Rasa server's start-up does not share the CPU with another's (the readiness
    poll runs every 0.25 s, which bounds the resolution of these times).
    """
    _run_setup(stack)
    for service in stack.services:
        started = time.monotonic()
        start_services([service], stack.env, stack.log_dir)
        stack.ready_s[service.name] = time.monotonic() - started


def stop(stack: Stack) -> None:
    stop_services(stack.services)
