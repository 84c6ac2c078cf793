"""How `scripts/conversation_tests.py` counts the held-out stories that hold."""

from __future__ import annotations

from pathlib import Path

from scripts.conversation_tests import HELDOUT, HELDOUT_MIN_HOLDING, count_stories


def test_the_heldout_set_has_at_least_twenty_stories_and_a_ninety_percent_bar() -> None:
    assert count_stories(HELDOUT) >= 20
    assert HELDOUT_MIN_HOLDING >= 0.9


def test_failed_stories_are_counted_from_rasas_report(tmp_path: Path) -> None:
    report = tmp_path / "failed_test_stories.yml"
    report.write_text(
        'version: "3.1"\nstories:\n- story: one\n  steps:\n  - intent: greet\n'
        "- story: two\n  steps:\n  - intent: deny\n"
    )
    assert count_stories(report) == 2


def test_a_report_without_failures_counts_none(tmp_path: Path) -> None:
    report = tmp_path / "failed_test_stories.yml"
    report.write_text("# None of the test stories failed - all good!\n")
    assert count_stories(report) == 0
