"""The action server entrypoint (`python -m actions.server`) as `keymedic run` starts it: Rasa's token
required, health, metrics of the actions it ran, request ids, and JSON log lines carrying the conversation
id."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import PROJECT_ROOT
from bot.launcher import free_port
from tests.support.action_server import running_action_servers

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def action_server(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[str, Path]]:
    var_dir = tmp_path_factory.mktemp("actions-var")
    shutil.copyfile(sqlite_template, var_dir / "keymedic.db")
    log = var_dir / "actions.log"
    env = {
        **{k: v for k, v in os.environ.items() if k != "SANIC_HOST"},  # the default address is under test
        "KEYMEDIC_VAR_DIR": str(var_dir),
        "KEYMEDIC_DATABASE_URL": f"sqlite:///{var_dir / 'keymedic.db'}",
        "KEYMEDIC_LOG_LEVEL": "debug",
        "KEYMEDIC_ACTIONS_TOKEN": TOKEN,
    }
    with running_action_servers(env, [log], timeout=60) as [server]:
        yield server.url, log


def call(url: str, action: str, sender: str, token: str | None = TOKEN) -> httpx.Response:
    """An action call as Rasa makes it (endpoints.yml sends the token as a bearer header); `token=None`
    leaves the header out."""
    tracker = {"sender_id": sender, "slots": {}, "latest_message": {}, "events": [], "paused": False,
               "followup_action": None, "active_loop": {}, "latest_action_name": None}  # fmt: skip
    body = {"next_action": action, "sender_id": sender, "tracker": tracker, "domain": {}, "version": "3.6.21"}
    headers = {"X-Request-ID": f"req-{sender}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/webhook", json=body, headers=headers, timeout=30)


def action_counts(url: str) -> dict[tuple[str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "keymedic_action_latency_seconds_count":
                counts[(sample.labels["action"], sample.labels["outcome"])] = sample.value
    return counts


def test_health_is_independent_of_the_model_and_ready_with_the_database(
    action_server: tuple[str, Path],
) -> None:
    url, _ = action_server
    assert httpx.get(f"{url}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True


def test_each_action_call_is_timed_under_its_own_name_or_other(action_server: tuple[str, Path]) -> None:
    url, log = action_server
    before = action_counts(url)
    ran = call(url, "action_removal_impact", "conv-metrics-1")
    missing = call(url, "action_that_does_not_exist_Zx9kQ2", "conv-metrics-2")
    assert ran.status_code == 200, ran.text
    assert ran.headers["X-Request-ID"] == "req-conv-metrics-1"
    assert missing.status_code == 404
    after = action_counts(url)
    assert after[("action_removal_impact", "ok")] == before.get(("action_removal_impact", "ok"), 0) + 1
    assert after[("other", "error")] == before.get(("other", "error"), 0) + 1
    assert not any("Zx9kQ2" in action for action, _ in after)

    time.sleep(0.2)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("conversation_id") == "conv-metrics-1"]
    assert mine, "no log line carried the conversation id"
    assert all(
        line["process"] == "actions" and line.get("request_id") == "req-conv-metrics-1" for line in mine
    )


def test_a_forged_action_call_without_rasas_token_is_refused(action_server: tuple[str, Path]) -> None:
    """Whoever reaches the action server could otherwise act as any user: list the demo user's wallets."""
    url, _ = action_server
    before = action_counts(url)
    for token in (None, "wrong-" + TOKEN, TOKEN[:-1]):
        forged = call(url, "action_ask_wallet_id", "demo", token=token)
        assert forged.status_code == 401, (token, forged.text)
        assert "events" not in forged.json()
    assert httpx.post(f"{url}/webhook", content=b"{}", headers={"Authorization": TOKEN}).status_code == 401
    assert httpx.get(f"{url}/actions").status_code == 401  # not even the list of what it can do
    assert httpx.get(f"{url}/actions", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    after = action_counts(url)
    assert after.get(("action_ask_wallet_id", "ok"), 0) == before.get(("action_ask_wallet_id", "ok"), 0)


def test_the_action_server_binds_loopback_unless_told_otherwise(action_server: tuple[str, Path]) -> None:
    _, log = action_server
    assert "action server starting on 127.0.0.1:" in log.read_text()


def test_the_action_server_does_not_start_without_a_token(tmp_path: Path) -> None:
    env = {**os.environ, "KEYMEDIC_VAR_DIR": str(tmp_path), "KEYMEDIC_ACTIONS_TOKEN": ""}
    done = subprocess.run(
        [sys.executable, "-m", "actions.server", "--port", str(free_port())],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "KEYMEDIC_ACTIONS_TOKEN is not set" in done.stderr
