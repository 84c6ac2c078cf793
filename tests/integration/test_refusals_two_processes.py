"""Two processes sharing Redis: a burst of checks with a key the exchange refuses, started together, reaches
the exchange exactly once in all (the key's single flight, bot/diagnosis/flight.py: the others wait for that
check and hear the key was already refused), and, once refused, not at all; the key budget is the second
line of defence. First two plain processes calling
`diagnose()`, then two real action servers (`python -m actions.server`) answering `action_check_api_key` calls
as Rasa makes them, with the submitted keys in one PostgreSQL database. The exchange is a counting HTTP server
that answers like Kraken for an unknown key."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.action_server import running_action_servers
from tests.support.redis import REDIS_URL

pytestmark = pytest.mark.integration

BUDGET = 3
# How long the counting exchange takes to answer.
ANSWER_DELAY_S = 0.3

# One process: a burst of 10 concurrent diagnoses of the same key, each as another user, started when the
# parent says "go" (stdin: the credentials on one line, then "go"), so two processes' bursts overlap.
_WORKER = """
import asyncio, json, sys
from bot.diagnosis import diagnose
from bot.types.credentials import Credentials

async def main():
    creds = Credentials.from_mapping(json.loads(sys.stdin.readline()))
    print("ready", flush=True)
    sys.stdin.readline()
    async def one(i):
        try:
            await diagnose("kraken", creds, user_id=f"user:{sys.argv[1]}:{i}")
        except Exception as error:
            return type(error).__name__
        return "diagnosed"
    print(json.dumps(await asyncio.gather(*(one(i) for i in range(10)))), flush=True)

asyncio.run(main())
"""


@pytest.fixture
def kraken_refusing() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            time.sleep(ANSWER_DELAY_S)  # the first check is still in flight when the others start
            body = json.dumps({"error": ["EAPI:Invalid key"], "result": {}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_two_processes_never_exceed_the_key_budget_and_stop_after_the_refusal(
    kraken_refusing: tuple[str, list[str]], namespace: str, tmp_path: object
) -> None:
    url, seen = kraken_refusing
    env = {
        **os.environ,
        "KEYMEDIC_KRAKEN_URL": url,
        "KEYMEDIC_REDIS_URL": REDIS_URL,
        "KEYMEDIC_REDIS_NAMESPACE": namespace,
        "KEYMEDIC_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(b"k" * 32).decode(),
        "KEYMEDIC_DIAGNOSIS_KEY_LIMIT": str(BUDGET),
        "KEYMEDIC_DIAGNOSIS_RATE_LIMIT": "100",
        "KEYMEDIC_DIAGNOSIS_USER_LIMIT": "100",
        "KEYMEDIC_VAR_DIR": str(tmp_path),
    }
    creds = json.dumps({"api_key": "K" * 52 + "abcd", "api_secret": base64.b64encode(b"k" * 64).decode()})

    def burst(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, name],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start(*processes: subprocess.Popen[str]) -> list[tuple[str, str]]:
        for process in processes:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(creds + "\n")
            process.stdin.flush()
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        return [process.communicate(timeout=60) for process in processes]

    first, second = burst("a"), burst("b")
    outputs = start(first, second)
    for process, (out, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err
        assert len(json.loads(out)) == 10
    assert len(seen) == 1, seen

    again = burst("c")
    [(out, err)] = start(again)
    assert again.returncode == 0, err
    assert len(seen) == 1, seen
    assert "diagnosed" in json.loads(out)  # answered from the remembered refusal, not refused outright


# --- the same burst through two action servers -------------------------------------------------------------

ACTIONS_TOKEN = secrets.token_urlsafe(32)
ENCRYPTION_KEYS = "k1:" + base64.urlsafe_b64encode(b"e" * 32).decode()
BURST = 16  # users, each submitting the same refused key once; half to each action server


@pytest.fixture
def shared_env(
    kraken_refusing: tuple[str, list[str]], namespace: str, postgres_url: str, tmp_path: Path
) -> dict[str, str]:
    from bot.store.db import create_database
    from tests.support.store import truncate_all

    database = create_database(postgres_url)
    truncate_all(database.engine)
    database.dispose()
    return {
        "KEYMEDIC_DATABASE_URL": postgres_url,
        "KEYMEDIC_KRAKEN_URL": kraken_refusing[0],
        "KEYMEDIC_REDIS_URL": REDIS_URL,
        "KEYMEDIC_REDIS_NAMESPACE": namespace,
        "KEYMEDIC_ENCRYPTION_KEYS": ENCRYPTION_KEYS,
        "KEYMEDIC_DIAGNOSIS_KEY_LIMIT": str(BUDGET),
        "KEYMEDIC_DIAGNOSIS_RATE_LIMIT": "100",
        "KEYMEDIC_DIAGNOSIS_USER_LIMIT": "100",
        "KEYMEDIC_VAR_DIR": str(tmp_path),
        "KEYMEDIC_ACTIONS_TOKEN": ACTIONS_TOKEN,
    }


@pytest.fixture
def action_servers(shared_env: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEYMEDIC_")}, **shared_env}
    logs = [tmp_path / f"actions-{index}.log" for index in range(2)]
    with running_action_servers(env, logs) as servers:
        yield [server.url for server in servers]


@pytest.fixture
async def submitted(shared_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """`submit(sender)`: that user's Kraken wallet with the refused key submitted through the real intake;
    returns (wallet id, reference)."""
    from bot.assistant import SupportDesk
    from bot.config import load_settings
    from bot.intake import submit_credentials
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    for name, value in shared_env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    desk = SupportDesk(settings, enqueue_resync=lambda run_id: None)
    database = create_database(settings.database_url)
    fields = {"api_key": "K" * 52 + "abcd", "api_secret": base64.b64encode(b"k" * 64).decode()}

    async def submit(sender: str) -> tuple[int, str]:
        wallet_id = (await desk.connect_wallet("rest", sender, "kraken")).wallet_id
        form = await desk.credential_form("rest", sender, sender, wallet_id)
        uow = SqlAlchemyUnitOfWork(database, load_key_ring(settings))
        receipt = submit_credentials(
            uow, form["token"], user_id=None, fields={"wallet_id": wallet_id, **fields}
        )
        return wallet_id, receipt.reference

    yield submit
    database.dispose()


def check_api_key(url: str, sender: str, wallet_id: int, reference: str) -> dict[str, Any]:
    """`action_check_api_key` as Rasa calls it: the tracker's slots, its bearer token."""
    tracker = {
        "sender_id": sender,
        "slots": {"wallet_id": str(wallet_id), "credential_ref": reference, "exchange": "kraken"},
        "latest_message": {"text": "/key_submitted", "intent": {"name": "key_submitted"}},
        "latest_input_channel": "rest",
        "events": [{"event": "user", "text": "/key_submitted", "input_channel": "rest", "parse_data": {}}],
        "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": "action_listen",
    }  # fmt: skip
    body = {"next_action": "action_check_api_key", "sender_id": sender, "tracker": tracker, "domain": {},
            "version": "3.6.21"}  # fmt: skip
    response = httpx.post(
        f"{url}/webhook", json=body, headers={"Authorization": f"Bearer {ACTIONS_TOKEN}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    slots = {e["name"]: e["value"] for e in response.json()["events"] if e.get("event") == "slot"}
    texts = [m.get("text") or "" for m in response.json()["responses"]]
    return {"key_status": slots.get("key_status"), "text": " ".join(texts)}


async def test_two_action_servers_keep_a_burst_within_the_key_budget(
    kraken_refusing: tuple[str, list[str]], action_servers: list[str], submitted: Any
) -> None:
    _, seen = kraken_refusing
    calls = []
    for i in range(BURST):
        sender = f"burst-{i}"
        wallet_id, reference = await submitted(sender)
        calls.append((action_servers[i % 2], sender, wallet_id, reference))

    # All at once, half on each server: one check reaches the exchange; the others wait for it.
    with ThreadPoolExecutor(BURST) as pool:
        results = list(pool.map(lambda call: check_api_key(*call), calls))

    assert len(seen) == 1, seen
    # Every user hears the key is wrong (from the exchange or from the remembered refusal), or is asked to
    # wait: never that the key works, never that the exchange could not be asked.
    assert {r["key_status"] for r in results} <= {"failed", "rate_limited"}, results
    assert any(r["key_status"] == "failed" for r in results)

    # Later submissions of the refused key, on either server: answered from memory, nothing sent.
    later = [(action_servers[i % 2], f"later-{i}") for i in range(4)]
    for url, sender in later:
        wallet_id, reference = await submitted(sender)
        result = check_api_key(url, sender, wallet_id, reference)
        assert result["key_status"] == "failed", result
        assert "already" in result["text"].lower(), result["text"]
    assert len(seen) == 1, seen
