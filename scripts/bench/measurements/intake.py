"""`intake`: latency of the secure credential intake (docs/intake.md), token issue and form submission.

The real web app (`keymedic web --host 127.0.0.1 --port 0`, its own process) serves a throw-away SQLite
database migrated with `alembic upgrade head`, in a temporary directory with a throw-away encryption key.
This process plays the Rasa action and the user's browser, one submission at a time (a user waits for the
answer before anything else happens):

- **token issue**: `issue_intake_token(...)` in this process, as the action calls it (one write transaction);
- **submission**: `POST /intake/credentials` with JSON (`token`, `wallet_id`, the sandbox's Kraken key), from
  sending to having the `201`, over a kept-alive connection.

`--quick` measures 50 submissions, a full run 200, each after 10 (`--quick`: 5) left-out warm-ups. Every
submission must answer 201; anything else fails the measurement. The web process is stopped (SIGTERM, then
SIGKILL after 10 s) and the directory removed, whatever happens.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.bench.figures import Figure
from scripts.bench.registry import BenchContext, measurement
from scripts.bench.stats import percentile

__all__ = ["intake", "parse_ready_line"]

READY = re.compile(r"^web ready on (http://127\.0\.0\.1:(\d+))\s*$")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def parse_ready_line(line: str) -> str | None:
    """The base URL from the web app's `web ready on http://127.0.0.1:PORT` line, or None for another line."""
    match = READY.match(line.strip())
    return match.group(1) if match else None


@contextmanager
def _web_app(env: dict[str, str], deadline: float) -> Iterator[str]:
    keymedic = str(Path(sys.executable).with_name("keymedic"))
    process = subprocess.Popen(
        [keymedic, "web", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        found: dict[str, str] = {}

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:  # keeps draining, so the app never blocks on a full pipe
                url = parse_ready_line(line)
                if url and "url" not in found:
                    found["url"] = url

        threading.Thread(target=read, name="bench-intake-web-stdout", daemon=True).start()
        give_up = min(deadline, time.monotonic() + START_TIMEOUT_S)
        while "url" not in found:
            if process.poll() is not None:
                raise RuntimeError(f"the web app exited with code {process.returncode} before it was ready")
            if time.monotonic() > give_up:
                raise TimeoutError("the web app did not print its ready line in time")
            time.sleep(0.05)
        yield found["url"]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)


@measurement("intake")
def intake(context: BenchContext) -> list[Figure]:
    """Token issue and `POST /intake/credentials` latency against the real web app on SQLite."""
    import httpx

    from bot.intake import SUBMIT_PATH, issue_intake_token
    from bot.sandbox.scenarios import credentials_for
    from bot.store import services
    from bot.store.crypto import new_key_entry, parse_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork
    from tests.support.store import migrated_sqlite

    deadline = time.monotonic() + context.budget_s
    count, warmup = (50, 5) if context.quick else (200, 10)
    issue_s: list[float] = []
    submit_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="keymedic-bench-intake-") as tmp:
        url = migrated_sqlite(Path(tmp) / "keymedic.db")
        keys = new_key_entry("bench")
        env = {
            **os.environ,
            "KEYMEDIC_DATABASE_URL": url,
            "KEYMEDIC_VAR_DIR": tmp,
            "KEYMEDIC_ENCRYPTION_KEYS": keys,
            "KEYMEDIC_WEB_PUBLIC_URL": "",
        }
        database = create_database(url)
        try:
            uow = SqlAlchemyUnitOfWork(database, parse_key_ring(keys))
            with uow:
                user_id = services.ensure_user(uow, "bench").id
                assert user_id is not None
                wallet_id = services.get_or_create_wallet(uow, user_id=user_id, exchange="kraken").id
                assert wallet_id is not None
                uow.commit()
            key = credentials_for("kraken", "valid")
            with _web_app(env, deadline) as base_url, httpx.Client(base_url=base_url, timeout=10.0) as http:
                for n in range(warmup + count):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"out of time after {n} of {warmup + count} submissions")
                    started = time.perf_counter()
                    token = issue_intake_token(
                        uow, user_id=user_id, conversation_id=f"bench-{n}", wallet_id=wallet_id
                    )
                    issued = time.perf_counter()
                    response = http.post(SUBMIT_PATH, json={"token": token, "wallet_id": wallet_id, **key})
                    answered = time.perf_counter()
                    if response.status_code != 201:
                        raise RuntimeError(f"submission {n} answered HTTP {response.status_code}")
                    if n >= warmup:
                        issue_s.append(issued - started)
                        submit_s.append(answered - issued)
        finally:
            database.dispose()
    issue_ms = [value * 1000 for value in issue_s]
    submit_ms = [value * 1000 for value in submit_s]
    return [
        Figure(f"token issue p50, {count} one at a time", "ms", percentile(issue_ms, 50)),
        Figure(f"token issue p95, {count} one at a time", "ms", percentile(issue_ms, 95)),
        Figure(f"POST /intake/credentials p50, {count} one at a time", "ms", percentile(submit_ms, 50)),
        Figure(f"POST /intake/credentials p95, {count} one at a time", "ms", percentile(submit_ms, 95)),
        Figure(f"POST /intake/credentials p99, {count} one at a time", "ms", percentile(submit_ms, 99)),
    ]
