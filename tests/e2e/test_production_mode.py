"""KeyMedic in production mode on this machine (`KEYMEDIC_ENV=production`, DESIGN §8).

First each process's own entrypoint is started with one unsafe setting and must refuse, with its one-line
reason. Then the stack runs as a deployment would: PostgreSQL (KeyMedic's database and the tracker store,
created and dropped here), Redis (jobs, Rasa's lock store), configured encryption keys, the internal tokens,
`credentials.production.yml` (no REST channel), Rasa's scrubbing logging configuration, and every exchange
URL on https. The exchanges are the sandbox served over TLS by this test with a certificate of a CA made
here; the processes trust that CA only because `KEYMEDIC_EXCHANGE_CA_BUNDLE` names it (bot/production.py:
plain http, or this machine without a named CA, is refused). A user then updates a key through the widget's
socket.io channel, the only user channel production has: the form, the live check over TLS, the swap and
the resync by a worker on Redis.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
from aiohttp import web

from bot.assistant import SupportDesk
from bot.cluster.stores import ensure_postgres_database, resolve_stores
from bot.cluster.topology import ClusterOptions, cluster_environment
from bot.config import PROJECT_ROOT, Settings
from bot.demo import prepare_database
from bot.launcher import (
    isolated_environment,
    isolated_settings,
    local_services,
    start_services,
    stop_services,
)
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for
from bot.sandbox.server import build_app
from bot.store.crypto import new_key_entry
from bot.training import ensure_model
from channels.identity import session_id_for
from tests.integration.channels.test_socketio_channel import Widget, connected
from tests.support.store import create_postgres_database, drop_postgres_database
from tests.tls import tls_files

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.rasa_model,
    # The TLS sandbox runs in this process: when a client drops a kept-alive TLS connection, Python 3.10's
    # asyncio leaves the server side's SSL transport unmarked as closed and warns when it is collected.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function _SSLProtocolTransport.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

DEMO = "demo"
REDIS_DB = 13
AUDIENCE = "keymedic-widget"


# -- a CA of this test and the sandbox on TLS ---------------------------------------------------------------


@dataclass
class TlsSandbox:
    url: str
    # Every path the sandbox answered, in order (the exchange is its first segment).
    paths: list[str]


@contextmanager
def tls_sandbox(cert: Path, key: Path) -> Iterator[TlsSandbox]:
    """The exchange sandbox on https://127.0.0.1:<port>, in a thread, until the block ends."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    paths: list[str] = []
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        paths.append(request.path)

    async def serve() -> None:
        app = build_app(latency_s=0.0)
        app.on_response_prepare.append(record)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        state["runner"], state["port"] = runner, runner.addresses[0][1]
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()

    thread = threading.Thread(target=run, name="tls-sandbox", daemon=True)
    thread.start()
    assert started.wait(30), "the TLS sandbox did not start"
    try:
        yield TlsSandbox(f"https://127.0.0.1:{state['port']}", paths)
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- the production environment ---------------------------------------------------------------------------


def production_environment(var_dir: Path, sandbox_url: str, ca_bundle: Path) -> dict[str, str]:
    """Every production setting, safe: the stack below starts with exactly these."""
    return {
        **isolated_environment(var_dir),
        "KEYMEDIC_ENV": "production",
        "KEYMEDIC_VAR_DIR": str(var_dir),
        "KEYMEDIC_ENCRYPTION_KEYS": new_key_entry("prod1"),
        "KEYMEDIC_RASA_TOKEN": secrets.token_urlsafe(32),
        "KEYMEDIC_ACTIONS_TOKEN": secrets.token_urlsafe(32),
        "KEYMEDIC_AGENT_TOKEN": secrets.token_urlsafe(32),
        "KEYMEDIC_WIDGET_JWT_SECRET": secrets.token_urlsafe(48),
        "KEYMEDIC_EXCHANGE_CA_BUNDLE": str(ca_bundle),
        **{f"KEYMEDIC_{exchange.upper()}_URL": f"{sandbox_url}/{exchange}" for exchange in SANDBOX_EXCHANGES},
    }


def _start_alone(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def test_each_process_refuses_to_start_in_production_with_an_unsafe_setting(tmp_path: Path) -> None:
    ca, _, _ = tls_files(tmp_path)
    safe = production_environment(tmp_path / "var", "https://127.0.0.1:9", ca)
    keymedic = str(Path(sys.executable).with_name("keymedic"))
    rasa = [sys.executable, "-m", "rasa_plugins.run", "--enable-api", "--port", "9",
            "--credentials", "credentials.production.yml",
            "--logging-config-file", "bot/observability/rasa_logging.yml"]  # fmt: skip
    cases = [
        ([keymedic, "web", "--port", "9"], {"KEYMEDIC_ENCRYPTION_KEYS": ""},
         "keymedic web: refusing to start in production: KEYMEDIC_ENCRYPTION_KEYS is not set"),
        ([keymedic, "worker"], {"KEYMEDIC_KRAKEN_URL": "http://127.0.0.1:8765/kraken"},
         "keymedic worker: refusing to start in production: KEYMEDIC_KRAKEN_URL is not an https URL"),
        ([keymedic, "worker"], {"KEYMEDIC_EXCHANGE_CA_BUNDLE": ""},
         "keymedic worker: refusing to start in production: KEYMEDIC_BINANCE_URL points at this machine"),
        ([sys.executable, "-m", "actions.server", "--port", "9"], {"KEYMEDIC_ACTIONS_TOKEN": ""},
         "action server: refusing to start in production: KEYMEDIC_ACTIONS_TOKEN is not set"),
        ([sys.executable, "-m", "actions.server", "--port", "9"], {"KEYMEDIC_AGENT_TOKEN": "too-short"},
         "action server: refusing to start in production: KEYMEDIC_AGENT_TOKEN is shorter than 32 bytes"),
        (rasa, {"KEYMEDIC_RASA_TOKEN": ""},
         "rasa: refusing to start in production: KEYMEDIC_RASA_TOKEN is not set"),
        (rasa, {"KEYMEDIC_WIDGET_DEMO_SIGNIN": "1"},
         "rasa: refusing to start in production: KEYMEDIC_WIDGET_DEMO_SIGNIN is on"),
        ([*rasa[:-2], "--credentials", "credentials.yml"], {},
         "rasa: refusing to start in production: credentials.yml enables the REST channel"),
        ([keymedic, "sandbox", "--port", "9"], {},
         "keymedic sandbox: refusing to start in production: the exchange sandbox is for local runs"),
        ([keymedic, "run"], {},
         "keymedic run: refusing to start in production: keymedic run starts a local run"),
    ]  # fmt: skip
    for argv, unsafe, reason in cases:
        done = _start_alone(argv, {**safe, **unsafe})
        assert done.returncode == 1, (argv, unsafe, done.stdout, done.stderr)
        assert reason in done.stderr, (argv, unsafe, done.stderr)
        for name in ("KEYMEDIC_RASA_TOKEN", "KEYMEDIC_ACTIONS_TOKEN", "KEYMEDIC_ENCRYPTION_KEYS"):
            if safe[name]:
                assert safe[name] not in done.stdout + done.stderr
    # Not one process made a key or token of its own.
    assert not (tmp_path / "var" / "keys").exists()


# -- the stack ---------------------------------------------------------------------------------------------


@dataclass
class ProductionStack:
    settings: Settings
    env: dict[str, str]
    sandbox: TlsSandbox

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def widget_token(self, sub: str) -> str:
        """The JWT a host app mints for its signed-in user."""
        now = int(time.time())
        claims = {"sub": sub, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        return jwt.encode(claims, self.env["KEYMEDIC_WIDGET_JWT_SECRET"], algorithm="HS256")


def _with_option(argv: list[str], flag: str, value: str) -> list[str]:
    at = argv.index(flag)
    return [*argv[: at + 1], value, *argv[at + 2 :]]


@pytest.fixture(scope="module")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    folder = tmp_path_factory.mktemp("production")
    var_dir = folder / "var"
    model = ensure_model()
    ca, cert, key = tls_files(folder)
    namespace = f"kmprod{secrets.token_hex(4)}"
    database_url = create_postgres_database()  # keymedic_test_<random>, migrated
    tracker_url = database_url + "_tracker"
    try:
        with tls_sandbox(cert, key) as sandbox:
            env_in = production_environment(var_dir, sandbox.url, ca)
            settings = replace(
                isolated_settings(var_dir),
                mode="production",
                database_url=database_url,
                tracker_url=tracker_url,
                redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
                redis_namespace=namespace,
                encryption_keys=env_in["KEYMEDIC_ENCRYPTION_KEYS"],
                rasa_token=env_in["KEYMEDIC_RASA_TOKEN"],
                actions_token=env_in["KEYMEDIC_ACTIONS_TOKEN"],
                agent_token=env_in["KEYMEDIC_AGENT_TOKEN"],
                widget_jwt_secret=env_in["KEYMEDIC_WIDGET_JWT_SECRET"],
            )
            stores = resolve_stores(settings)
            ensure_postgres_database(stores.tracker_url)
            prepare_database(settings)  # the demo user, its wallets sealed with the configured key
            env = cluster_environment(settings, stores, ClusterOptions(replicas=1, action_workers=1), env_in)
            services = [s for s in local_services(settings, model) if s.name != "sandbox"]
            for service in services:
                if service.name == "actions":
                    service.argv = _with_option(service.argv, "--port", str(settings.actions_port))
                if service.name == "rasa":
                    argv = _with_option(service.argv, "--endpoints", "endpoints.cluster.yml")
                    service.argv = _with_option(argv, "--credentials", "credentials.production.yml")
            try:
                start_services(services, env, var_dir / "logs")
                yield ProductionStack(settings=settings, env=env, sandbox=sandbox)
            finally:
                stop_services(services)
    finally:
        drop_postgres_database(tracker_url)
        drop_postgres_database(database_url)
        client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
        for found in client.scan_iter(match=f"*{namespace}*"):
            client.delete(found)
        client.close()


def test_production_serves_no_rest_channel_no_demo_sign_in_and_no_open_internal_api(
    production_stack: ProductionStack,
) -> None:
    stack = production_stack
    with httpx.Client(timeout=30, trust_env=False) as http:
        rest = http.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": DEMO, "message": "hi"})
        assert rest.status_code == 404
        conversation = f"/conversations/{session_id_for(DEMO)}/tracker"
        assert http.get(f"{stack.rasa_url}{conversation}").status_code == 401
        token = {"token": stack.env["KEYMEDIC_RASA_TOKEN"]}
        assert http.get(f"{stack.rasa_url}{conversation}", params=token).status_code == 200
        actions = f"http://127.0.0.1:{stack.settings.actions_port}"
        assert (
            http.post(f"{actions}/webhook", json={"next_action": "action_ask_wallet_id"}).status_code == 401
        )
        assert http.post(f"{stack.web_url}/widget/demo-token").status_code in (403, 404)


async def test_a_key_update_through_the_widget_checks_the_key_over_tls_and_resyncs(
    production_stack: ProductionStack,
) -> None:
    stack = production_stack
    kraken = {w.exchange: w.wallet_id for w in await SupportDesk(stack.settings).wallets("rest", DEMO)}[
        "kraken"
    ]
    origin = f"http://127.0.0.1:{stack.settings.web_port}"  # the widget page's origin (the allowed one)

    def said(replies: list[dict[str, Any]]) -> str:
        return "\n".join(str(r.get("text") or "") for r in replies)

    async with connected(stack, token=stack.widget_token(DEMO), origin=origin) as widget:  # type: ignore[arg-type]
        await widget.client.emit("session_request", {"session_id": None})
        session = await widget.next("session_confirm")
        assert session == session_id_for(DEMO)

        async def turn(text: str, done: Any) -> list[dict[str, Any]]:
            await widget.client.emit("user_uttered", {"message": text, "session_id": session})
            replies: list[dict[str, Any]] = await Widget.replies_until(widget, done)
            return replies

        replies = await turn(
            "my kraken wallet says the api key is invalid", lambda rs: any("custom" in r for r in rs)
        )
        form = next(r["custom"] for r in replies if "custom" in r)
        assert form["wallet_id"] == kraken

        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            posted = await http.post(
                form["submit_url"],
                json={"token": form["token"], "wallet_id": kraken, **credentials_for("kraken", "valid")},
                # As the widget posts it: the form's token works only for the user it was offered to.
                headers={"Authorization": f"Bearer {stack.widget_token(DEMO)}"},
            )
        assert posted.status_code == 201, posted.text
        reference = posted.json()["reference"]

        checked_before = len(stack.sandbox.paths)
        replies = await turn(
            f'/credentials_submitted{{"credential_ref": "{reference}"}}',
            lambda rs: "existing Kraken connection now uses the new key" in said(rs),
        )
        assert "passed every check" in said(replies)
        # The live check went to the exchange URL over TLS, trusted through the configured CA only.
        assert any(p.startswith("/kraken/") for p in stack.sandbox.paths[checked_before:])

        deadline = time.monotonic() + 90
        text = said(replies)
        while "syncing again" not in text:
            assert time.monotonic() < deadline, f"the resync never finished: {text}"
            await asyncio.sleep(2)
            text = said(await turn("is the sync done yet?", lambda rs: len(rs) >= 1))

    # Rasa's own log is scrubbed JSON lines (the logging configuration of every production start).
    rasa_log = stack.settings.var_dir / "logs" / "rasa.jsonl"
    assert rasa_log.exists()
    logged = b"".join(p.read_bytes() for p in (stack.settings.var_dir / "logs").iterdir())
    for secret in (
        credentials_for("kraken", "valid")["api_secret"],
        stack.env["KEYMEDIC_RASA_TOKEN"],
        stack.env["KEYMEDIC_ACTIONS_TOKEN"],
    ):
        assert secret.encode() not in logged
    assert os.environ.get("KEYMEDIC_ENV", "local") != "production"  # the test process itself stayed local
