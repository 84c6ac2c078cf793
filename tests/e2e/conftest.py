"""The real Rasa server and action server, started once per test run on free ports.

They use the one fingerprinted model of this run (`bot.training.ensure_model`: `make test` has trained it
already; a bare `pytest` trains it once) and a SQL tracker store on a fresh SQLite file.

Both tracker stores (issue 18). Every test runs on KeyMedic's windowed store (`[windowed]`, what `keymedic
run` uses); the modules marked `both_stores` run a second time on a stack of their own with Rasa's stock
`SQLTrackerStore` (`[rasa]`), and must pass there unchanged: the windowed store must converse exactly as
Rasa's own. Not the whole suite: `make test` must stay under 30 minutes, and a second stack costs a Rasa start
plus its tests. The subset is what a tracker store can change: the key update's form over many turns and a
save older than the window (test_key_update_flow.py), the hand-off's pause, transcript and resume
(test_handoff_flow.py), and the conversation kept in the SQL store (test_first_conversation.py). The NLU,
the knowledge answers, the browsers and the cluster read nothing a window would cut.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.demo import prepare_database
from bot.launcher import (
    WINDOWED_TRACKER_STORE,
    Service,
    child_environment,
    free_port,
    isolated_environment,
    isolated_settings,
    local_agent_token,
    local_services,
    start_services,
    stop_services,
)
from bot.training import ensure_model
from tests.support.waiting import eventually

Replies = list[dict[str, object]]


def texts(replies: Replies) -> str:
    """The bot's replies to one message, as one text."""
    return "\n".join(str(r.get("text") or "") for r in replies)


def wait_for_resync(say: Callable[[str], Replies], answer: str, *, timeout: float = 90.0) -> str:
    """The bot's answer once it says the wallet is syncing again: `answer` (its last one) when it already
    does, else its answer to "is the sync done yet?", asked through `say` every second until it does."""

    def done() -> str:
        text = texts(say("is the sync done yet?"))
        return text if "syncing again" in text else ""

    if "syncing again" in answer:
        return answer
    return eventually(done, "the bot to say the resync finished", timeout=timeout, interval=1)


@dataclass(frozen=True)
class RasaStack:
    rasa_url: str
    tracker_db: Path
    settings: Settings
    agent_token: str
    # The children's environment and processes, so a test can restart one (tests/e2e/test_escalation_*.py).
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    # Support notifications go to this port; a test that wants them runs a receiver there.
    support_webhook_port: int = 0
    widget_jwt_secret: str = ""

    @property
    def log_dir(self) -> Path:
        return self.settings.var_dir / "logs"

    def stop(self, name: str) -> None:
        """Stop one service (SIGTERM, as an operator would; SIGKILL if it lingers)."""
        [service] = [s for s in self.services if s.name == name]
        stop_services([service])
        service.process = None

    def start(self, name: str) -> None:
        """Start a stopped service again and wait until it is ready (its log starts afresh)."""
        [service] = [s for s in self.services if s.name == name]
        start_services([service], self.env, self.log_dir)

    def worker_idle(self) -> bool:
        """Whether the worker has started jobs and ended every one, by its log: Huey logs `Executing <task>`
        as a job starts and `<task> executed in …` or `Unhandled exception in task …` as it ends (the task
        ids are scrubbed from the log, so they are counted). A barrier for "nothing more is sent": every
        pass that could still send is over."""
        path = self.log_dir / "worker.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        started = sum("Executing bot.jobs." in line for line in lines)
        ended = sum(" executed in " in line or "Unhandled exception in task" in line for line in lines)
        return started > 0 and started == ended

    @property
    def rasa_token(self) -> str:
        """Rasa's `--auth-token`: its HTTP API (trackers, parse, trigger_intent) answers 401 without it."""
        return self.env["KEYMEDIC_RASA_TOKEN"]

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """One call to Rasa's HTTP API (`path` after the base URL), with the token, as KeyMedic's callers send
        it (the `token` query parameter, rasa/server.py `requires_auth`)."""
        params = {**dict(kwargs.pop("params", None) or {}), "token": self.rasa_token}  # type: ignore[call-overload]
        return httpx.request(method, f"{self.rasa_url}{path}", params=params, timeout=30, **kwargs)  # type: ignore[arg-type]

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def say(self, sender: str, text: str) -> list[dict[str, object]]:
        """Send one user message over the REST channel and return the bot's replies."""
        response = httpx.post(
            f"{self.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=30
        )
        response.raise_for_status()
        replies: list[dict[str, object]] = response.json()
        return replies

    def parse(self, text: str) -> dict[str, object]:
        """Rasa's NLU result for one message, from the running server."""
        response = self.api("POST", "/model/parse", json={"text": text})
        response.raise_for_status()
        parsed: dict[str, object] = response.json()
        return parsed


@contextlib.contextmanager
def start_rasa_stack(settings: Settings, extra_env: Mapping[str, str]) -> Iterator[RasaStack]:
    """The whole local run on `settings`, as `keymedic run` starts it (demo data, sandbox, worker, web app,
    actions, Rasa), until the block ends; its children get the isolated environment plus `extra_env`."""
    tracker_db = settings.var_dir / "tracker.db"
    env = child_environment(settings, {**isolated_environment(settings.var_dir), **extra_env})
    prepare_database(settings)
    services = local_services(settings, ensure_model())
    try:
        start_services(services, env, settings.var_dir / "logs")
        yield RasaStack(
            rasa_url=f"http://127.0.0.1:{settings.rasa_port}",
            tracker_db=tracker_db,
            settings=settings,
            # The local operator's credential (`bot.demo.ensure_local_operator`, run by prepare_database).
            agent_token=local_agent_token(settings),
            env=env,
            services=services,
        )
    finally:
        stop_services(services)


# endpoints.yml's `tracker_store.type` (KEYMEDIC_TRACKER_STORE) for each of the two stores.
TRACKER_STORES = {"windowed": WINDOWED_TRACKER_STORE, "rasa": "SQL"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tracker_store" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_stores") is not None
        stores = list(TRACKER_STORES) if both else ["windowed"]
        metafunc.parametrize("tracker_store", stores, indirect=True, scope="session")


@pytest.fixture(scope="session")
def tracker_store(request: pytest.FixtureRequest) -> str:
    """Which tracker store the session's stack runs on: "windowed" or "rasa" (Rasa's own)."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory, tracker_store: str) -> Iterator[RasaStack]:
    with own_rasa_stack(tmp_path_factory, tracker_store=tracker_store) as stack:
        yield stack


@contextlib.contextmanager
def own_rasa_stack(
    tmp_path_factory: pytest.TempPathFactory, *, tracker_store: str = "windowed"
) -> Iterator[RasaStack]:
    """A whole local run of its own: the session's shared stack, or a module's that must not share the demo
    user's one widget conversation with other tests (tests/e2e/test_agent_console_browser.py)."""
    # Everything this stack touches is its own: free ports, and state (database, keys, jobs) in a temp folder.
    settings = isolated_settings(tmp_path_factory.mktemp("var"))
    webhook_port = free_port()
    widget_secret = secrets.token_urlsafe(32)
    extra = {
        # Hand-off notifications go to a port the tests choose; retries come within seconds, not minutes.
        "KEYMEDIC_SUPPORT_WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/hook",
        "KEYMEDIC_OUTBOX_RETRY_BASE": "1",
        "KEYMEDIC_OUTBOX_RETRY_CAP": "4",
        "KEYMEDIC_WIDGET_JWT_SECRET": widget_secret,
        # The browser test signs in through the demo page, whatever the caller's environment says.
        "KEYMEDIC_WIDGET_DEMO_SIGNIN": "1",
        "KEYMEDIC_TRACKER_STORE": TRACKER_STORES[tracker_store],
    }
    with start_rasa_stack(settings, extra) as stack:
        yield replace(stack, support_webhook_port=webhook_port, widget_jwt_secret=widget_secret)
