"""`keymedic run`: start every process of a local KeyMedic and stop them all on Ctrl-C.

Each service runs as its own child process in its own session, so a Ctrl-C in the terminal reaches only this
launcher, which then stops the children in order and waits for them. Children write to `var/logs/<name>.log`;
the terminal gets one line per service when it is ready, one line saying where to talk to the assistant, and
the tail of a child's log if it dies.

A child that dies is restarted on its own, after a pause that doubles with each crash (`RESTART_BACKOFF_S`),
while the others go on serving; one with a port that stops answering its liveness check
(`LIVENESS_FAILURES` checks in a row, as Kubernetes' livenessProbe does), or the job worker whose heartbeat
file goes stale (`bot.worker_liveness`), is killed and restarted the same
way. A child that crashes `CRASH_LIMIT` times within `CRASH_WINDOW_S` is not tried again: the launcher stops
everything and exits with the reason (a loop of restarts helps nobody). `keymedic cluster` supervises its
processes the same way (issue 19).

Rasa, whose start is far longer than the others' (TensorFlow's imports and the model load), has a `Standby`
in a local run: a second Rasa, loaded but not serving, promoted the moment the serving one dies, and followed
by a new standby once it serves (`bot.standby`; docs/reliability.md, "Rasa's start").
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

from bot import standby as standby_contract
from bot import worker_liveness
from bot.config import PROJECT_ROOT, Settings, load_settings
from bot.observability.health import rasa_model_loaded
from bot.observability.logs import RASA_LOGGING_CONFIG
from bot.production import refuse_to_start
from bot.sandbox.scenarios import SANDBOX_EXCHANGES

__all__ = [
    "Service",
    "Standby",
    "port_open",
    "http_ok",
    "local_services",
    "worker_heartbeat",
    "child_environment",
    "local_agent_token",
    "rasa_token",
    "actions_token",
    "free_port",
    "WINDOWED_TRACKER_STORE",
    "isolated_settings",
    "isolated_environment",
    "start_services",
    "stop_services",
    "supervise",
    "Supervisor",
    "add_arguments",
    "run",
]

READY_TIMEOUT_S = 180.0  # Rasa imports TensorFlow and loads the model before it accepts connections
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 30
# endpoints.yml's `tracker_store.type` (KEYMEDIC_TRACKER_STORE): the windowed store of rasa_plugins, unless
# the caller names another (the tests run a subset on Rasa's own `SQL` store too, tests/e2e/conftest.py).
WINDOWED_TRACKER_STORE = "rasa_plugins.tracker_store.WindowedSQLTrackerStore"
# Restarts: the pause before the n-th restart within the window, then the last one again.
RESTART_BACKOFF_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
CRASH_LIMIT = 5
CRASH_WINDOW_S = 120.0
# Liveness, for children with a port: Kubernetes' probes here (deploy/kubernetes) check every 10 s and give
# up after 3 failures; a local run checks more often so a hung child is back sooner.
LIVENESS_INTERVAL_S = 2.0
LIVENESS_TIMEOUT_S = 2.0
LIVENESS_FAILURES = 3


@dataclass
class Standby:
    """A second process of a service, started with `PROMOTE_DIR_ENV` set: it loads everything, then waits
    without serving until the supervisor promotes it, the moment the serving process dies (bot/standby.py).
    Rasa's, so a killed Rasa answers again without a whole start (docs/reliability.md, "Rasa's start")."""

    promote_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    log_offset: int = 0

    def loaded(self) -> bool:
        """Whether the running standby has loaded and is waiting to be promoted (its log says so)."""
        if self.process is None or self.log_path is None:
            return False
        return _logged_since(self.log_path, self.log_offset, standby_contract.READY_LINE)


@dataclass
class Service:
    """One child process and how to tell that it is ready."""

    name: str
    argv: list[str]
    url: str
    # Ready when `ready()` says so, or (for processes without a port) when their log shows `ready_line`.
    ready: Callable[[], bool] | None = None
    ready_line: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # False: the next service starts at once, without waiting for this one to be ready (it is waited for
    # before the next service that waits, or at the end). Several Rasa replicas load their models together.
    wait: bool = True
    # The path under `url` that answers 200 while the process is alive (None: no liveness check).
    live_path: str | None = None
    # For a process without a port (the job worker): the file it rewrites while alive, stale after
    # `worker_liveness.STALE_AFTER_S` (bot/worker_liveness.py); checked like `live_path`.
    heartbeat: Path | None = None
    # Kept loaded by the supervisor (not by `start_services`) to take over when this process dies.
    standby: Standby | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Where this start's lines begin in the log (a restart appends), so `ready_line` counts only this start.
    log_offset: int = 0


def _port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        import httpx  # imported here so `keymedic --help` stays fast

        try:
            # trust_env=False: a proxy configured in the environment must never see requests to 127.0.0.1.
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return check


# Public names of the two readiness checks, for other launchers (bot.cluster).
port_open = _port_open
http_ok = _http_ok


def _is_ready(service: Service) -> bool:
    if service.ready is not None and not service.ready():
        return False
    if service.ready_line is not None:
        if service.log_path is None:
            return False
        return _logged_since(service.log_path, service.log_offset, service.ready_line)
    return True


def _logged_since(log_path: Path, offset: int, line: str) -> bool:
    """Whether `line` was written to the log after `offset` (where this process's run of it began)."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return line in log.read().decode("utf-8", "replace")
    except OSError:
        return False


def local_agent_token(settings: Settings) -> str:
    """The local operator's agent API credential: made once into `var/keys/agent.token`, owner-only
    (`bot.demo.ensure_local_operator` registers it as the agent `local-operator`)."""
    return _local_token(settings, "agent.token")


def rasa_token(settings: Settings) -> str:
    """Rasa's `--auth-token`: `KEYMEDIC_RASA_TOKEN`, else a local run's `var/keys/rasa.token` (made once).

    Production never makes one: an empty token there makes every process refuse to start.
    """
    return settings.rasa_token or ("" if settings.production else _local_token(settings, "rasa.token"))


def actions_token(settings: Settings) -> str:
    """The token Rasa sends the action server: `KEYMEDIC_ACTIONS_TOKEN`, else `var/keys/actions.token`
    (never made in production)."""
    return settings.actions_token or ("" if settings.production else _local_token(settings, "actions.token"))


def _local_token(settings: Settings, name: str) -> str:
    """A token of a local run: made once into `var/keys/<name>`, owner-only, then read back."""
    path = settings.var_dir / "keys" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL with mode 0600: the file is never readable by others, not even for an instant.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def child_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every child gets: the caller's, with `settings` written over it.

    The children read their ports, state folder and database from here (endpoints.yml substitutes some of
    them), so they agree with `settings` even when the caller's environment said otherwise.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        RASA_PORT=str(settings.rasa_port),
        ACTIONS_PORT=str(settings.actions_port),
        WEB_PORT=str(settings.web_port),
        SANDBOX_PORT=str(settings.sandbox_port),
        KEYMEDIC_VAR_DIR=str(settings.var_dir),
        KEYMEDIC_DATABASE_URL=settings.database_url,
    )
    env.setdefault("KEYMEDIC_TRACKER_DB", str(settings.var_dir / "tracker.db"))
    env.setdefault("KEYMEDIC_TRACKER_STORE", WINDOWED_TRACKER_STORE)
    # The internal doors' tokens (DESIGN §8): every child that calls Rasa's HTTP API, Rasa itself, the action
    # server and Rasa's calls to it read them from here, the same ones the readiness checks use.
    env["KEYMEDIC_RASA_TOKEN"] = rasa_token(settings)
    env["KEYMEDIC_ACTIONS_TOKEN"] = actions_token(settings)
    # The widget's JWT key (docs/widget.md): the caller's, else a fresh one per run, so the web app's demo
    # sign-in and Rasa's socket.io channel agree without a key ever written to disk.
    if settings.widget_jwt_secret:
        env["KEYMEDIC_WIDGET_JWT_SECRET"] = settings.widget_jwt_secret
    elif not env.get("KEYMEDIC_WIDGET_JWT_SECRET", "").strip():
        env["KEYMEDIC_WIDGET_JWT_SECRET"] = secrets.token_urlsafe(48)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if settings.production:
        # Production settings are the caller's own: none of a local run's conveniences is slipped in.
        return env
    # A local run lets a newcomer chat in the browser as `demo`; the web app honours it on loopback only.
    env.setdefault("KEYMEDIC_WIDGET_DEMO_SIGNIN", "1")
    # A local run talks to the exchange sandbox, never to a real exchange (DESIGN §4).
    for exchange in SANDBOX_EXCHANGES:
        env.setdefault(
            f"KEYMEDIC_{exchange.upper()}_URL", f"http://127.0.0.1:{settings.sandbox_port}/{exchange}"
        )
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolated_settings(var_dir: Path) -> Settings:
    """Settings for a throw-away local run (the tests' stacks): free ports, and its state (database, keys,
    jobs, logs) in `var_dir`.

    The caller's jobs queue, public web address, Rasa address and tracker store are dropped: they belong to
    another run (`make` exports the checkout's var/tracker.db; the run's Rasa uses `var_dir`'s, as
    `isolated_environment` says, and that one is the file `prepare_database` must migrate).
    """
    return replace(
        load_settings(),
        rasa_port=free_port(),
        actions_port=free_port(),
        sandbox_port=free_port(),
        web_port=free_port(),
        var_dir=var_dir,
        database_url=f"sqlite:///{var_dir / 'keymedic.db'}",
        tracker_db=str(var_dir / "tracker.db"),
        tracker_url="",
        jobs_url="",
        web_public_url="",
        rasa_url="",
    )


def isolated_environment(var_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment (or `base`) for the children of a throw-away run in `var_dir`, to pass to
    `child_environment`: without any `KEYMEDIC_*_URL`, and with the tracker store in `var_dir`.

    A developer's exported `KEYMEDIC_KRAKEN_URL`, database or webhook must not send the run to another
    sandbox or database, and `make` exports its own `KEYMEDIC_TRACKER_DB` (var/tracker.db).
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not (k.startswith("KEYMEDIC_") and k.endswith("_URL"))}
    env["KEYMEDIC_TRACKER_DB"] = str(var_dir / "tracker.db")
    return env


def worker_heartbeat(settings: Settings, name: str) -> Path:
    """The heartbeat file of job worker `name` (each worker of a cluster has its own)."""
    return settings.var_dir / "run" / f"{name}.heartbeat"


def local_services(settings: Settings, model: Path) -> list[Service]:
    """The processes of a local run, in start order (DESIGN §2)."""
    keymedic = str(Path(sys.executable).parent / "keymedic")
    token = rasa_token(settings)
    return [
        Service(
            name="sandbox",
            argv=[keymedic, "sandbox", "--host", "127.0.0.1", "--port", str(settings.sandbox_port)],
            ready=_http_ok(f"http://127.0.0.1:{settings.sandbox_port}/health/live"),
            url=f"http://127.0.0.1:{settings.sandbox_port}",
            live_path="/health/live",
        ),
        Service(
            name="actions",
            # rasa_sdk's server plus /metrics and /health/* (actions/server.py, docs/operating.md).
            argv=[sys.executable, "-m", "actions.server", "--port", str(settings.actions_port)],
            ready=_http_ok(f"http://127.0.0.1:{settings.actions_port}/health/ready"),
            url=f"http://127.0.0.1:{settings.actions_port}",
            live_path="/health/live",
            # rasa_sdk reads its bind address from SANIC_HOST; it must not listen beyond this machine.
            extra_env={"SANIC_HOST": "127.0.0.1"},
        ),
        Service(
            name="worker",
            argv=[keymedic, "worker", "--heartbeat", str(worker_heartbeat(settings, "worker"))],
            ready_line="worker: ready",
            url=settings.jobs_url or f"sqlite:{settings.var_dir / 'jobs.db'}",
            heartbeat=worker_heartbeat(settings, "worker"),
        ),
        Service(
            name="web",
            argv=[keymedic, "web", "--host", "127.0.0.1", "--port", str(settings.web_port)],
            ready=_http_ok(f"http://127.0.0.1:{settings.web_port}/health/ready"),
            url=f"http://127.0.0.1:{settings.web_port}",
            live_path="/health/live",
        ),
        Service(
            name="rasa",
            # `rasa run`, with --auth-token from KEYMEDIC_RASA_TOKEN kept off the command line
            # (rasa_plugins/run.py): Rasa's HTTP API always takes the token; the channel webhooks stay open.
            argv=[
                sys.executable,
                "-m",
                "rasa_plugins.run",
                "--enable-api",
                "--interface",
                "127.0.0.1",
                "--port",
                str(settings.rasa_port),
                "--model",
                str(model),
                "--endpoints",
                "endpoints.yml",
                "--credentials",
                "credentials.yml",
                # JSON lines into var/logs/rasa.jsonl, secrets scrubbed (bot/observability/logs.py).
                "--logging-config-file",
                str(RASA_LOGGING_CONFIG),
                *(["--debug"] if settings.log_level == "debug" else []),
                # The widget page (another origin) polls socket.io before it upgrades to a websocket.
                "--cors",
                *settings.widget_allowed_origins,
            ],  # fmt: skip
            # Ready once the model is loaded (GET /status), not merely listening.
            ready=lambda: rasa_model_loaded(f"http://127.0.0.1:{settings.rasa_port}", token),
            url=f"http://127.0.0.1:{settings.rasa_port}",
            # Rasa's "Hello from Rasa", as Kubernetes' livenessProbe (deploy/kubernetes/rasa.yaml).
            live_path="/",
            standby=Standby(settings.var_dir / "run") if settings.rasa_standby else None,
        ),
    ]


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _tail(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(f"    {line}" for line in lines)


def _start(service: Service, env: dict[str, str], log_dir: Path, *, restart: bool = False) -> None:
    service.log_path = log_dir / f"{service.name}.log"
    # A restart appends: the lines before the crash are what explains it.
    service.log_offset = service.log_path.stat().st_size if restart and service.log_path.exists() else 0
    with open(service.log_path, "ab" if restart else "wb") as log:
        service.process = subprocess.Popen(
            service.argv,
            cwd=PROJECT_ROOT,
            env={**env, **service.extra_env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _standby_log(service: Service, log_dir: Path) -> Path:
    """Of `<name>.log` and `<name>.2.log`, the one the serving process does not write to: after a promotion
    the serving process goes on writing to its standby's log, and its own next standby takes the other."""
    first, second = log_dir / f"{service.name}.log", log_dir / f"{service.name}.2.log"
    return second if service.log_path in (None, first) else first


def _start_standby(service: Service, env: dict[str, str], log_dir: Path) -> None:
    standby = service.standby
    assert standby is not None
    standby.promote_dir.mkdir(parents=True, exist_ok=True)
    standby.log_path = _standby_log(service, log_dir)
    standby.log_offset = standby.log_path.stat().st_size if standby.log_path.exists() else 0
    with open(standby.log_path, "ab") as log:
        standby.process = subprocess.Popen(
            service.argv,
            cwd=PROJECT_ROOT,
            env={**env, **service.extra_env, standby_contract.PROMOTE_DIR_ENV: str(standby.promote_dir)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # A file left by an earlier process with the same pid (one that died as it was promoted) must not
    # promote this one; it looks only once loaded, seconds from now.
    standby_contract.promote_file(standby.promote_dir, standby.process.pid).unlink(missing_ok=True)


def _promote(service: Service) -> bool:
    """Put `service`'s running standby in place of its dead process; False when it has none running."""
    standby = service.standby
    if standby is None or standby.process is None or standby.process.poll() is not None:
        return False
    # The file first: the standby binds the port as soon as it sees it (at once when already loaded).
    standby_contract.promote_file(standby.promote_dir, standby.process.pid).touch()
    service.process, service.log_path, service.log_offset = (
        standby.process,
        standby.log_path,
        standby.log_offset,
    )
    standby.process = None
    return True


def _wait_ready(service: Service, deadline: float) -> None:
    assert service.process is not None
    while not _is_ready(service):
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with code {service.process.returncode} before it was ready; "
                f"last lines of {service.log_path}:\n{_tail(service.log_path)}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{service.name} was not ready after {READY_TIMEOUT_S:.0f} s; see {service.log_path}"
            )
        time.sleep(0.25)


def start_services(services: list[Service], env: dict[str, str], log_dir: Path) -> None:
    """Start the services in order, each only once the previous one is ready; raise if one fails."""
    log_dir.mkdir(parents=True, exist_ok=True)
    pending: list[Service] = []
    for service in services:
        _start(service, env, log_dir)
        pending.append(service)
        if service.wait or service is services[-1]:
            deadline = time.monotonic() + READY_TIMEOUT_S
            for started in pending:
                _wait_ready(started, deadline)
                print(f"{started.name} ready on {started.url} (log: {started.log_path})", flush=True)
            pending.clear()


def stop_services(services: list[Service]) -> None:
    """Stop the running services and their standbys, last started first; kill what ignores SIGTERM for too
    long."""
    processes = [
        process
        for service in reversed(services)
        for process in (service.standby.process if service.standby else None, service.process)
    ]
    running = [process for process in processes if process is not None and process.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class _Watch:
    """What the supervisor knows of one service between two looks."""

    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    starting: bool = False
    live_failures: int = 0
    next_live_check: float = 0.0
    # When to start the service's next standby (None: not due, one runs or the service is starting).
    standby_at: float | None = 0.0
    standby_announced: bool = False


def _live(service: Service) -> bool:
    if service.heartbeat is not None:
        return worker_liveness.alive(service.heartbeat)
    if service.live_path is None:
        return True
    import httpx

    try:
        url = f"{service.url}{service.live_path}"
        return httpx.get(url, timeout=LIVENESS_TIMEOUT_S, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _say(message: str) -> None:
    print(f"keymedic: {message}", file=sys.stderr, flush=True)


def _crashed(service: Service, watch: _Watch, now: float, what: str, code: int) -> float:
    """Count a crash of `what` (the service, or its standby); the pause before its restart; raise when giving
    up. Both count against the one budget: a standby that cannot load is a service that cannot start."""
    while watch.crashes and now - watch.crashes[0] > CRASH_WINDOW_S:
        watch.crashes.popleft()
    watch.crashes.append(now)
    if len(watch.crashes) >= CRASH_LIMIT:
        log = service.standby.log_path if what != service.name and service.standby else service.log_path
        raise RuntimeError(
            f"{what} stopped {len(watch.crashes)} times within {CRASH_WINDOW_S:.0f} s (last exit "
            f"code {code}); giving up. Last lines of {log}:\n{_tail(log)}"
        )
    return RESTART_BACKOFF_S[min(len(watch.crashes), len(RESTART_BACKOFF_S)) - 1]


def _look_after_standby(service: Service, watch: _Watch, env: dict[str, str], log_dir: Path) -> None:
    """Start the standby when due (only while the service serves: the two never load at once); notice its
    crash."""
    standby = service.standby
    if standby is None:
        return
    now = time.monotonic()
    if standby.process is None:
        if watch.standby_at is not None and now >= watch.standby_at and not watch.starting:
            if watch.restart_at is None and service.process is not None and service.process.poll() is None:
                watch.standby_at = None
                watch.standby_announced = False
                _start_standby(service, env, log_dir)
        return
    if not watch.standby_announced and standby.loaded():
        watch.standby_announced = True
        _say(f"{service.name}'s standby is loaded, ready to take over (log: {standby.log_path})")
    code = standby.process.poll()
    if code is not None:
        standby.process = None
        pause = _crashed(service, watch, now, f"{service.name}'s standby", code)
        _say(
            f"{service.name}'s standby stopped with code {code}; starting another in {pause:g} s (crash "
            f"{len(watch.crashes)} of {CRASH_LIMIT} allowed within {CRASH_WINDOW_S:.0f} s). Last lines of "
            f"{standby.log_path}:\n{_tail(standby.log_path)}"
        )
        watch.standby_at = now + pause


def _look_after(service: Service, watch: _Watch, env: dict[str, str], log_dir: Path) -> None:
    """One look at one service: restart it when due, notice a crash or a hang; raise when giving up."""
    _look_after_standby(service, watch, env, log_dir)
    now = time.monotonic()
    if watch.restart_at is not None:
        if now >= watch.restart_at:
            watch.restart_at = None
            _start(service, env, log_dir, restart=True)
            watch.starting = True
            watch.live_failures = 0
            _say(f"{service.name} restarted")
        return
    assert service.process is not None
    code = service.process.poll()
    if code is not None:
        pause = _crashed(service, watch, now, service.name, code)
        tail = _tail(service.log_path)
        if _promote(service):
            # No pause: the standby has loaded already, and the crash budget still bounds a loop of them.
            watch.starting = True
            watch.live_failures = 0
            _say(
                f"{service.name} stopped with code {code}; its standby takes over (crash "
                f"{len(watch.crashes)} of {CRASH_LIMIT} allowed within {CRASH_WINDOW_S:.0f} s; log now "
                f"{service.log_path}); the others keep serving. Last lines of the stopped one's log:\n{tail}"
            )
            # The next standby once this one serves, after the pause a restart would have waited.
            watch.standby_at = now + pause
            return
        _say(
            f"{service.name} stopped with code {code}; restarting it in {pause:g} s (crash "
            f"{len(watch.crashes)} of {CRASH_LIMIT} allowed within {CRASH_WINDOW_S:.0f} s); the others keep "
            f"serving. Last lines of {service.log_path}:\n{tail}"
        )
        watch.restart_at = now + pause
        if service.standby is not None and watch.standby_at is None and service.standby.process is None:
            watch.standby_at = now + pause
        return
    if watch.starting:
        if _is_ready(service):
            watch.starting = False
            watch.next_live_check = now + LIVENESS_INTERVAL_S
            _say(f"{service.name} is back on {service.url}")
        return
    if (service.live_path is None and service.heartbeat is None) or now < watch.next_live_check:
        return
    watch.next_live_check = now + LIVENESS_INTERVAL_S
    if _live(service):
        watch.live_failures = 0
        return
    watch.live_failures += 1
    if watch.live_failures >= LIVENESS_FAILURES:
        times = watch.live_failures
        what = (
            f"beat into {service.heartbeat}"
            if service.heartbeat is not None
            else f"answer {service.live_path}"
        )
        _say(f"{service.name} did not {what} {times} times in a row; killing it")
        # SIGKILL: a hung (or stopped) process does not act on SIGTERM. Its exit is then a crash like any.
        os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait()


class Supervisor:
    """Keeps started services running (see the module's docstring); `look()` is one round over them."""

    def __init__(self, services: list[Service], env: dict[str, str], log_dir: Path) -> None:
        self.services = services
        self.env = env
        self.log_dir = log_dir
        self._watches = {service.name: _Watch() for service in services}

    def look(self) -> None:
        """Restart what is due, notice crashes and hangs; raise RuntimeError when giving up on one."""
        for service in self.services:
            _look_after(service, self._watches[service.name], self.env, self.log_dir)


def supervise(services: list[Service], env: dict[str, str], log_dir: Path, banner: str) -> int:
    """Start the services in order, print `banner` once all are ready, then keep them running (see the
    module's docstring) until Ctrl-C, or until one crashes too often."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor(services, env, log_dir)
    try:
        start_services(services, env, log_dir)
        print(banner, flush=True)
        while True:
            supervisor.look()
            time.sleep(0.25)
    except _Stop:
        print("stopping KeyMedic ...", flush=True)
        return 0
    except RuntimeError as error:
        print(f"keymedic run: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_services(services)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`keymedic run` takes its ports from RASA_PORT, ACTIONS_PORT and SANDBOX_PORT."""


def run(args: argparse.Namespace) -> int:
    """Start the local KeyMedic: train if stale, then every service, until Ctrl-C."""
    from bot.demo import prepare_database
    from bot.training import ensure_model

    settings = load_settings()
    # `keymedic run` starts the exchange sandbox and the demo sign-in: a local run by definition. In
    # production each process starts on its own (docs/deploy.md) and checks itself.
    if refuse_to_start(settings, "keymedic run", ["keymedic run starts a local run (sandbox, demo sign-in)"]):
        return 1
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    model = ensure_model()
    if prepare_database(settings):
        print("database: migrated and loaded the demo user `demo` (README, 'Demo data')", flush=True)
    banner = (
        f"KeyMedic is up. Talk to it: curl -s localhost:{settings.rasa_port}/webhooks/rest/webhook "
        f'-d \'{{"sender": "demo", "message": "hi"}}\'  (Ctrl-C stops everything; the agent API token is '
        f"in {settings.var_dir / 'keys' / 'agent.token'})\n"
        f"Chat in the browser as the demo user: {settings.web_base_url}/widget"
    )
    env = child_environment(settings)
    return supervise(local_services(settings, model), env, settings.var_dir / "logs", banner)
