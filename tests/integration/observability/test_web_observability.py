"""The web app's /health/live, /health/ready and /metrics over real HTTP, on SQLite and PostgreSQL: readiness
follows the database, and the background jobs' figures are read from it (seed.py has known ones)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings, load_settings
from bot.store.db import Database
from bot.web.app import build_app, start
from tests.integration.observability.seed import seed_keymedic

pytestmark = pytest.mark.integration


@contextmanager
def web_app(settings: Settings) -> Iterator[str]:
    """The real web app of `settings` on a free port, in a thread with its own loop."""
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        runner, port = await start(build_app(settings), "127.0.0.1", 0)
        state["port"] = port
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "the web app did not start"
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        stop.set()
        thread.join(10)
        loop.close()


def settings_for(database_url: str, var_dir: Path) -> Settings:
    return replace(
        load_settings(), database_url=database_url, var_dir=var_dir, encryption_keys="", agent_token=""
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_health_and_job_figures_from_the_database(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    seed_keymedic(database.engine)
    with web_app(settings_for(database_url, tmp_path)) as url:
        live = httpx.get(f"{url}/health/live")
        ready = httpx.get(f"{url}/health/ready", headers={"X-Request-ID": "probe-1"})
        metrics = httpx.get(f"{url}/metrics")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True
    assert ready.headers["X-Request-ID"] == "probe-1"
    assert metrics.headers["Content-Type"].startswith("text/plain")
    found = samples(metrics.text)

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("keymedic_job_figures_up") == 1
    assert value("keymedic_resyncs_total", exchange="kraken", status="succeeded") == 3
    assert value("keymedic_resyncs_total", exchange="coinbase", status="failed") == 1
    assert value("keymedic_resyncs_active", status="queued") == 1
    assert value("keymedic_resyncs_active", status="running") == 0
    # kraken runs took 250 s, 120 s and 60 s; coinbase's 60 s
    assert value("keymedic_resync_duration_seconds_count", exchange="kraken") == 3
    assert value("keymedic_resync_duration_seconds_sum", exchange="kraken") == 430
    assert value("keymedic_resync_duration_seconds_bucket", exchange="kraken", le="120.0") == 2
    assert value("keymedic_notifications_delivered_total", reason="ticket_opened") == 1
    assert value("keymedic_outbox_backlog", reason="ticket_opened") == 1
    assert value("keymedic_outbox_oldest_pending_seconds") > 0
    assert value("keymedic_tickets_total") == 2
    # The process's own families are there too (empty in the web app until something is recorded).
    assert "keymedic_diagnoses_total" in metrics.text


def test_not_ready_while_the_database_cannot_be_reached(tmp_path: Path) -> None:
    unreachable = "postgresql+psycopg2://postgres@127.0.0.1:1/keymedic"
    with web_app(settings_for(unreachable, tmp_path)) as url:
        live = httpx.get(f"{url}/health/live")
        ready = httpx.get(f"{url}/health/ready")
        metrics = httpx.get(f"{url}/metrics")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": {"ok": False, "error": "OperationalError"}},
    }
    assert "127.0.0.1:1" not in ready.text
    assert metrics.status_code == 200 and "keymedic_job_figures_up 0.0" in metrics.text


def test_turn_latency_is_read_from_the_tracker_stores_new_events(
    database: Database, database_url: str, tracker_url: str, tmp_path: Path
) -> None:
    import asyncio as aio

    from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationPaused, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from tests.integration.observability.conftest import rasa_store

    store = rasa_store(tracker_url)
    before_start = [UserUttered("hi", timestamp=1.0), ActionExecuted("action_listen", timestamp=9.0)]
    old = DialogueStateTracker.from_events("before-start", before_start)
    aio.run(store.save(old))  # type: ignore[attr-defined]
    settings = replace(settings_for(database_url, tmp_path), tracker_url=tracker_url)
    with web_app(settings) as url:
        first = samples(httpx.get(f"{url}/metrics").text)
        t = 1_800_000_000.0
        turns = DialogueStateTracker.from_events(
            "turns",
            [UserUttered("hi", input_channel="rest", timestamp=t), BotUttered("hello", timestamp=t + 0.5),
             ActionExecuted("action_listen", timestamp=t + 0.75),
             UserUttered("my key", input_channel="socketio", timestamp=t + 10),
             ActionExecuted("action_check_api_key", timestamp=t + 11),
             ActionExecuted("action_listen", timestamp=t + 13),
             # A reminder's turn (the resync check): Rasa made the message, nobody waited for it.
             UserUttered("EXTERNAL: ask_sync_status", input_channel="rest", timestamp=t + 15),
             ActionExecuted("action_report_sync", timestamp=t + 15.5),
             ActionExecuted("action_listen", timestamp=t + 16),
             UserUttered("a person please", input_channel="rest", timestamp=t + 20),
             ActionExecuted("action_handoff_to_support", timestamp=t + 21),
             ConversationPaused(timestamp=t + 21.5)],  # a hand-off ends the turn without listening
        )  # fmt: skip
        aio.run(store.save(turns))  # type: ignore[attr-defined]
        second = samples(httpx.get(f"{url}/metrics").text)
    store.engine.dispose()  # type: ignore[attr-defined]
    assert not any(
        name.startswith("keymedic_turn_latency_seconds_count") for name, _ in first
    )  # counted from start
    assert second[("keymedic_turn_latency_seconds_count", (("channel", "rest"),))] == 2
    assert second[("keymedic_turn_latency_seconds_sum", (("channel", "rest"),))] == 0.75 + 1.5
    assert second[("keymedic_turn_latency_seconds_bucket", (("channel", "socketio"), ("le", "2.0")))] == 0
    assert second[("keymedic_turn_latency_seconds_bucket", (("channel", "socketio"), ("le", "4.0")))] == 1
