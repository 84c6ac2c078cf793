"""Questions asked beside a trigger in one message (bot/side_questions.py), on the held-out two-part set and
on every single-part trigger message of the NLU data (none of which asks anything)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.config import PROJECT_ROOT
from bot.side_questions import SETTLED_TWO_PART_CONFIDENCE, SideTopic, side_questions, two_part_trigger
from scripts.nlu_eval import load_examples

ROOT = Path(__file__).resolve().parents[2]
TWO_PART: list[dict[str, object]] = yaml.safe_load((ROOT / "tests" / "nlu" / "two_part.yml").read_text())[
    "messages"
]
TRIGGERS = {"sync_stopped", "invalid_key_error", "key_revoked", "security_changed", "update_key"}


@pytest.mark.parametrize("message", TWO_PART, ids=[str(m["text"]) for m in TWO_PART])
def test_every_question_beside_a_trigger_is_found(message: dict[str, object]) -> None:
    assert [t.value for t in side_questions(str(message["text"]))] == message["questions"]


def test_a_trigger_alone_asks_nothing_in_any_training_or_heldout_example() -> None:
    files = [*sorted((ROOT / "data" / "nlu").glob("*.yml")), ROOT / "tests" / "nlu" / "heldout.yml"]
    triggers = [e for path in files for e in load_examples(path) if e.intent in TRIGGERS]
    assert len(triggers) > 200
    assert {e.text: side_questions(e.text) for e in triggers if side_questions(e.text)} == {}


def test_an_exchange_error_text_listing_settings_is_not_a_question() -> None:
    assert side_questions("Invalid API-key, IP, or permissions for action") == []


def test_the_question_nlu_already_answers_is_left_out() -> None:
    text = "does my kraken key need a passphrase? it stopped working"
    assert side_questions(text) == [SideTopic.PASSPHRASE]
    assert side_questions(text, besides="ask_passphrase") == []


def test_a_two_part_message_read_as_its_question_becomes_its_trigger() -> None:
    text = "my kraken key stopped working, do I need a passphrase?"
    ranking = [("ask_passphrase", 0.95), ("sync_stopped", 0.03), ("greet", 0.01)]
    reading = two_part_trigger(text, ranking)
    assert reading is not None
    assert (reading.trigger, reading.questions) == ("sync_stopped", ("ask_passphrase",))
    assert reading.confidence == pytest.approx(0.98)


def test_a_two_part_message_split_between_its_parts_gets_their_joint_confidence() -> None:
    text = "i changed my 2fa and the wallet broke, does the new key need activating?"
    ranking = [("security_changed", 0.51), ("ask_key_activation", 0.47), ("greet", 0.01)]
    reading = two_part_trigger(text, ranking)
    assert reading is not None
    assert reading.trigger == "security_changed"
    assert reading.confidence == pytest.approx(0.98)


@pytest.mark.parametrize(
    "text",
    [
        "does my kraken key need a passphrase?",
        "i made the key, where do i find the passphrase?",
        "the app asks for a passphrase, what is it?",
    ],
)
def test_a_plain_question_stays_a_question(text: str) -> None:
    assert two_part_trigger(text, [("ask_passphrase", 0.9), ("update_key", 0.05)]) is None


def test_a_message_nlu_reads_as_something_else_is_left_alone() -> None:
    text = "my kraken key stopped working, do I need a passphrase?"
    assert two_part_trigger(text, [("request_human", 0.9), ("sync_stopped", 0.05)]) is None


def test_a_two_part_reading_survives_the_fallback_threshold() -> None:
    threshold = next(
        step["threshold"]
        for step in yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())["pipeline"]
        if step["name"] == "FallbackClassifier"
    )
    assert SETTLED_TWO_PART_CONFIDENCE > threshold
    text = "my kucoin connection stopped updating, what passphrase do you mean"
    # As the model read it: the question first, the trigger far behind, both under the threshold together.
    ranking = [("ask_passphrase", 0.23), ("no_transactions", 0.18), ("faq", 0.11), ("sync_stopped", 0.09)]
    reading = two_part_trigger(text, ranking)
    assert reading is not None and reading.trigger == "sync_stopped"
    assert reading.confidence == SETTLED_TWO_PART_CONFIDENCE


def test_a_confident_two_part_reading_keeps_the_confidence_of_both_parts() -> None:
    text = "my kucoin connection stopped updating, what passphrase do you mean"
    reading = two_part_trigger(text, [("sync_stopped", 0.55), ("ask_passphrase", 0.30), ("faq", 0.05)])
    assert reading is not None and reading.confidence == pytest.approx(0.85)


def test_no_floor_when_diet_reads_neither_part() -> None:
    text = "my kucoin connection stopped updating, what passphrase do you mean"
    ranking = [("out_of_scope", 0.5), ("sync_stopped", 0.2), ("ask_passphrase", 0.1)]
    assert two_part_trigger(text, ranking) is None
