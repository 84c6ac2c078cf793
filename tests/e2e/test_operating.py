"""Operating KeyMedic, over the real processes of `keymedic run` at debug level (docs/operating.md):

- full key update conversations (Kraken, Coinbase's PEM key refused, KuCoin with its passphrase, Binance),
  the keys of the other shapes (OKX, Gemini, Bitstamp, Binance.US) pasted into the chat, and a hand-off leave
  no secret of any key used, in any form, in any process's log;
- the logs are JSON lines carrying the conversation id;
- the metrics of the action server and the web app count exactly what happened;
- every process answers its health endpoints, and Rasa is ready only with its model loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.launcher import isolated_settings
from bot.observability.health import rasa_model_loaded
from bot.sandbox.scenarios import credentials_for
from tests.e2e.conftest import RasaStack, start_rasa_stack, texts
from tests.e2e.conftest import wait_for_resync as resynced
from tests.support.waiting import eventually
from tests.unit.observability.secrets import secret_fragments

pytestmark = pytest.mark.e2e

DEMO = "demo"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def debug_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """The whole local run at KEYMEDIC_LOG_LEVEL=debug, on its own ports and state."""
    settings = replace(
        isolated_settings(tmp_path_factory.mktemp("operating")), tracker_url="", log_level="debug"
    )
    # No KEYMEDIC_SUPPORT_WEBHOOK_URL (the isolated environment has no KEYMEDIC_*_URL): notifications wait
    # in the outbox, and the backlog shows it.
    with start_rasa_stack(settings, {"KEYMEDIC_LOG_LEVEL": "debug"}) as stack:
        yield stack


def samples(url: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


SAID: list[str] = []  # every message sent, so the turn counter can be checked exactly


def say(stack: RasaStack, sender: str, text: str) -> list[dict[str, Any]]:
    SAID.append(text)
    return stack.say(sender, text)


def update_key(stack: RasaStack, opening: str, exchange: str, scenario: str) -> str:
    """Report a broken key, enter a sandbox key in the secure form, have it tested; the bot's answer."""
    say(stack, DEMO, "/restart")
    replies = say(stack, DEMO, opening)
    forms = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)]
    assert forms, f"no credential form in {replies}"
    form = forms[-1]
    posted = httpx.post(
        form["submit_url"],
        json={"token": form["token"], "wallet_id": form["wallet_id"], **credentials_for(exchange, scenario)},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    reference = posted.json()["reference"]
    return texts(say(stack, DEMO, f'/credentials_submitted{{"credential_ref": "{reference}"}}'))


def wait_for_resync(stack: RasaStack) -> None:
    resynced(lambda said: say(stack, DEMO, said), "")


def log_line(path: Path, *fragments: str) -> str:
    """The first line of the log at `path` holding every fragment, or "" (none yet)."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return next((line for line in lines if all(f in line for f in fragments)), "")


def test_health_endpoints_of_every_process(debug_stack: RasaStack) -> None:
    s = debug_stack.settings
    assert httpx.get(f"http://127.0.0.1:{s.sandbox_port}/health/live").json() == {"status": "ok"}
    for port in (s.actions_port, s.web_port):
        assert httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True
    assert rasa_model_loaded(debug_stack.rasa_url, debug_stack.rasa_token)


def test_a_debug_level_run_logs_no_secret_and_its_metrics_count_what_happened(debug_stack: RasaStack) -> None:
    s = debug_stack.settings
    actions_url, web_url = f"http://127.0.0.1:{s.actions_port}", f"http://127.0.0.1:{s.web_port}"
    web_before = samples(web_url)  # also starts the turn counter at the tracker store's newest event
    SAID.clear()
    through_the_form = [("kraken", "valid"), ("coinbase", "withdrawals_enabled"), ("kucoin", "valid"),
                        ("binance", "valid")]  # fmt: skip
    pasted_in_chat = [
        credentials_for(exchange, "valid") for exchange in ("okx", "gemini", "bitstamp", "binance_us")
    ]
    used = [credentials_for(*key) for key in through_the_form] + pasted_in_chat

    answer = update_key(debug_stack, "my kraken wallet says the api key is invalid", "kraken", "valid")
    assert "passed every check" in answer
    wait_for_resync(debug_stack)
    answer = update_key(
        debug_stack, "I want to swap the api key on my coinbase", "coinbase", "withdrawals_enabled"
    )
    assert "doesn't work yet" in answer
    answer = update_key(debug_stack, "I changed my 2FA on kucoin and need a new key", "kucoin", "valid")
    assert "passed every check" in answer
    wait_for_resync(debug_stack)
    answer = update_key(debug_stack, "my binance wallet stopped syncing, invalid api key", "binance", "valid")
    assert "passed every check" in answer
    wait_for_resync(debug_stack)
    # Keys of the other shapes, pasted into the chat (the channel redacts them before Rasa sees them).
    for credentials in pasted_in_chat:
        parts = " ".join(f"{name} {value}" for name, value in credentials.items())
        say(debug_stack, "ops-handoff", f"here is my new key, {parts}")
    say(debug_stack, "ops-handoff", "I want to talk to a person")
    # Everything the test set off has written its lines: Rasa and the action server answered a later turn,
    # sent once the hand-off's was answered, and the worker finished the delivery pass the hand-off queued
    # (no webhook: its notification waits, and the pass says so).
    say(debug_stack, "ops-barrier", "hi")
    eventually(
        lambda: log_line(s.var_dir / "logs" / "worker.log", "bot.jobs.deliver_outbox", "executed in"),
        "the worker to finish the hand-off's delivery pass",
    )

    # No secret in any log, in any form a log could hold it.
    logs = sorted(p for p in (s.var_dir / "logs").iterdir() if p.is_file())
    assert {p.name for p in logs} >= {
        "rasa.log",
        "rasa.jsonl",
        "actions.log",
        "web.log",
        "worker.log",
        "sandbox.log",
    }
    for path in logs:
        content = path.read_text(errors="replace")
        for credentials in used:
            for fragment in secret_fragments(credentials):
                assert fragment not in content, f"{path.name} holds a secret"
                assert json.dumps(fragment)[1:-1] not in content, f"{path.name} holds an escaped secret"

    # JSON lines at debug level, with the conversation id, from each KeyMedic process and Rasa.
    for name in ("actions.log", "web.log", "worker.log", "rasa.jsonl"):
        lines = [
            json.loads(line)
            for line in (s.var_dir / "logs" / name).read_text().splitlines()
            if line.startswith("{")
        ]
        assert lines, f"{name} has no JSON lines"
        assert any(line["level"] == "debug" for line in lines), f"{name} is not at debug level"
    actions_lines = [
        json.loads(x)
        for x in (s.var_dir / "logs" / "actions.log").read_text().splitlines()
        if x.startswith("{")
    ]
    assert any(line.get("conversation_id") == DEMO for line in actions_lines)

    actions = samples(actions_url)
    diag = "keymedic_diagnoses_total"
    assert value(actions, diag, exchange="kraken", item="format", outcome="pass") == 1
    assert value(actions, diag, exchange="coinbase", item="no_trade_or_withdraw", outcome="fail") == 1
    assert value(actions, diag, exchange="kucoin", item="passphrase_ok", outcome="pass") == 1
    assert (
        value(actions, "keymedic_action_latency_seconds_count", action="action_check_api_key", outcome="ok")
        == 4
    )
    assert value(actions, "keymedic_tickets_opened_total", reason="request_human") == 1

    def grew(name: str, **labels: str) -> float:
        return value(web, name, **labels) - value(web_before, name, **labels)

    def with_last_resync() -> Samples | None:
        found = samples(web_url)
        binance = ("keymedic_resyncs_total", (("exchange", "binance"), ("status", "succeeded")))
        return found if found.get(binance, 0.0) > web_before.get(binance, 0.0) else None

    # Job figures come from the database and are cached for ten seconds per scrape: wait out one cache
    # lifetime for the last resync's row rather than reading a scrape that may predate it.
    web = eventually(with_last_resync, "the job figures to count the last resync", timeout=30, interval=1)

    assert grew("keymedic_resyncs_total", exchange="kraken", status="succeeded") == 1
    assert grew("keymedic_resyncs_total", exchange="kucoin", status="succeeded") == 1
    assert grew("keymedic_resyncs_total", exchange="binance", status="succeeded") == 1
    assert grew("keymedic_resync_duration_seconds_count", exchange="kraken") == 1
    assert grew("keymedic_tickets_total") == 1
    assert value(web, "keymedic_outbox_backlog", reason="ticket_opened") == 1  # no webhook configured
    assert value(web, "keymedic_turn_latency_seconds_count", channel="rest") == len(SAID)
    assert value(web, "keymedic_turn_latency_seconds_sum", channel="rest") > 0
