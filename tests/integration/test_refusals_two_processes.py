"""Two action-server processes sharing Redis: a burst of checks with a key the exchange refuses reaches the
exchange at most the key's budget of times in all, and, once refused, not at all. The exchange is a counting
HTTP server that answers like Kraken for an unknown key."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
BUDGET = 3

# One process: a burst of 10 concurrent diagnoses of the same key, each as another user.
_WORKER = """
import asyncio, json, sys
from bot.diagnosis import diagnose
from bot.diagnosis.model import Credentials

async def main():
    creds = Credentials.from_mapping(json.loads(sys.stdin.read()))
    async def one(i):
        try:
            await diagnose("kraken", creds, user_id=f"user:{sys.argv[1]}:{i}")
        except Exception as error:
            return type(error).__name__
        return "diagnosed"
    print(json.dumps(await asyncio.gather(*(one(i) for i in range(10)))))

asyncio.run(main())
"""


@pytest.fixture
def kraken_refusing() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
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


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"kmtest{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)
    client.close()


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

    first, second = burst("a"), burst("b")
    outputs = [p.communicate(creds, timeout=60) for p in (first, second)]
    for process, (out, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err
        assert len(json.loads(out)) == 10
    assert 1 <= len(seen) <= BUDGET

    again = burst("c")
    out, err = again.communicate(creds, timeout=60)
    assert again.returncode == 0, err
    assert len(seen) <= BUDGET
    assert "diagnosed" in json.loads(out)  # answered from the remembered refusal, not refused outright
