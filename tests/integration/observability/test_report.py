"""`keymedic report` on a seeded tracker store and KeyMedic database with known outcomes (seed.py), on
SQLite and PostgreSQL: the numbers behind every plot, the filters, and the page in headless Chromium."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.cli import main
from bot.report.data import Filters, build_report
from bot.report.render import render_html
from tests.integration.observability.seed import SECRET

pytestmark = pytest.mark.integration

NOVEMBER = Filters(
    since=datetime(2026, 11, 1, tzinfo=timezone.utc), until=datetime(2026, 12, 1, tzinfo=timezone.utc)
)


def test_all_time_numbers(seeded: tuple[Engine, Engine]) -> None:
    data = build_report(*seeded, Filters())
    assert data.conversations == 6  # alice twice, bob, carol, dave, erin
    assert data.funnel == {"triaged": 5, "key_updated": 4, "resynced": 3}
    assert data.handed_off == 2 and data.contained == 3
    assert data.containment_rate == pytest.approx(3 / 5) and data.handoff_rate == pytest.approx(2 / 5)
    assert data.resolution_s == [60.0, 180.0, 540.0]
    assert data.diagnoses == 5
    assert data.failing_items == {
        "kraken": {"read_permission": 2, "secret_ok": 1, "has_activity": 1},
        "coinbase": {"no_trade_or_withdraw": 1, "no_ip_restriction": 1},
    }


def test_satisfaction_ratings_per_exchange_and_per_path(seeded: tuple[Engine, Engine]) -> None:
    data = build_report(*seeded, Filters())
    # bob rated 4 (coinbase), carol 2 (kraken), both after a hand-off; dave's 9 is no rating: left out.
    assert data.csat_by_exchange == {"coinbase": [4], "kraken": [2]}
    assert data.csat_by_path == {"handed off": [4, 2]}  # both were handed to support
    summary = data.to_dict()["csat"]
    assert summary["by_exchange"] == {
        "coinbase": {"ratings": 1, "mean": 4.0},
        "kraken": {"ratings": 1, "mean": 2.0},
    }
    assert "Satisfaction (1-5)" in render_html(data)


def test_the_date_window_counts_conversations_and_tests_that_started_in_it(
    seeded: tuple[Engine, Engine],
) -> None:
    data = build_report(*seeded, NOVEMBER)
    assert data.conversations == 5
    assert data.funnel == {"triaged": 4, "key_updated": 3, "resynced": 2}
    assert (data.contained, data.handed_off) == (2, 2)
    assert data.containment_rate == 0.5 and data.handoff_rate == 0.5
    assert data.resolution_s == [180.0, 540.0] and data.median_resolution_s == 360.0
    assert data.diagnoses == 4
    assert data.failing_items["kraken"] == {"read_permission": 2, "secret_ok": 1}


def test_the_exchange_filter_keeps_that_exchanges_conversations_and_tests(
    seeded: tuple[Engine, Engine],
) -> None:
    data = build_report(*seeded, Filters(NOVEMBER.since, NOVEMBER.until, frozenset({"kraken"})))
    assert data.funnel == {"triaged": 3, "key_updated": 2, "resynced": 2}  # alice twice, carol
    assert (data.contained, data.handed_off) == (2, 1)
    assert set(data.failing_items) == {"kraken"} and data.diagnoses == 3


def test_fallback_messages_are_counted_normalised_and_redacted(seeded: tuple[Engine, Engine]) -> None:
    data = build_report(*seeded, NOVEMBER)
    assert data.top_fallbacks == [("asdf qwerty", 2), ("here it is [redacted secret]", 1)]
    assert SECRET not in json.dumps(data.to_dict())


def test_the_command_writes_the_page_with_the_same_numbers(
    seeded: tuple[Engine, Engine], database_url: str, tracker_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_TRACKER_URL", tracker_url)
    out = tmp_path / "report.html"
    code = main(
        [
            "report",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-30",
            "--exchange",
            "kraken",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    final = capsys.readouterr().out.strip().splitlines()[-1]
    assert final.startswith("report: 3 conversations, 3 triaged, 2 resolved without a person -> ")
    page = out.read_text()
    embedded = json.loads(page.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert embedded["funnel"] == {"triaged": 3, "key_updated": 2, "resynced": 2}
    assert embedded["filters"]["exchanges"] == ["kraken"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--exchange", "kraken_pro"],
        ["--since", "2026-12-01", "--until", "2026-11-01"],
        ["--since", "yesterday"],
    ],
)
def test_bad_filters_get_a_clear_message_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # argparse itself refuses a date it cannot read (exit 2 through SystemExit).
    with pytest.raises(SystemExit) if "yesterday" in argv else contextlib.nullcontext():
        assert main(["report", "--out", str(tmp_path / "r.html"), *argv]) == 2
    assert "keymedic report" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_the_page_opens_in_headless_chromium_without_errors_or_requests(
    seeded: tuple[Engine, Engine], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    data = build_report(*seeded, NOVEMBER)
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(data))
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            shown = json.loads(page.locator("#report-data").text_content() or "{}")
            plots = page.locator("figure.plot svg").count()
            cards = page.locator(".card").all_inner_texts()
            fallbacks = page.locator("table").last.inner_text()
        finally:
            browser.close()
    assert problems == []
    assert requests == [page_file.as_uri()]  # self-contained: nothing else is fetched
    assert shown == json.loads(json.dumps(data.to_dict()))
    assert plots == 4  # funnel, containment, failing items, time to resolution
    assert any("Contained" in card and "50%" in card for card in cards)
    assert "here it is [redacted secret]" in fallbacks and SECRET not in fallbacks
