"""How the trained model does on messages it never saw: tests/nlu/heldout.yml, parsed by the real server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scripts.nlu_eval import Scores, load_examples, score
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e

HELDOUT = Path(__file__).resolve().parents[1] / "nlu" / "heldout.yml"
MIN_INTENT_ACCURACY = 0.97
MIN_EXCHANGE_F1 = 0.98
# Issue 14: the FAQ's retrieval intents must get their topic's answer (intent and response key both right).
MIN_FAQ_SELECTION = 0.90


@pytest.fixture(scope="module")
def heldout_scores(rasa_stack: RasaStack) -> Scores:
    latencies: list[float] = []

    def timed_parse(text: str) -> dict[str, object]:
        started = time.perf_counter()
        result = rasa_stack.parse(text)
        latencies.append((time.perf_counter() - started) * 1000)
        return result

    # `score` reads the latencies after its last parse, so the list it gets is complete by then.
    scores = score(load_examples(HELDOUT), timed_parse, latencies)
    print(
        f"held-out NLU: {scores.examples} examples, intent accuracy {scores.intent_accuracy:.3f}, "
        f"exchange F1 {scores.entity_f1:.3f}, FAQ selection {scores.faq_correct}/{scores.faq_total} "
        f"({scores.faq_accuracy:.3f}), parse p50 {scores.latency_p50_ms:.1f} ms"
    )
    return scores


def _confusions(scores: Scores) -> str:
    return "\n".join(
        f"  {c.expected} -> {c.predicted} ({c.confidence:.2f}): {c.text}" for c in scores.confusions
    )


def test_heldout_intent_accuracy_is_at_least_097(heldout_scores: Scores) -> None:
    assert heldout_scores.intent_accuracy >= MIN_INTENT_ACCURACY, _confusions(heldout_scores)


def test_heldout_exchange_entity_f1_is_at_least_098(heldout_scores: Scores) -> None:
    errors = "\n".join(
        f"  {e.text}: expected {e.expected}, got {e.predicted}" for e in heldout_scores.entity_errors
    )
    assert heldout_scores.entity_f1 >= MIN_EXCHANGE_F1, errors


def test_every_out_of_scope_message_reaches_a_fallback(heldout_scores: Scores) -> None:
    assert heldout_scores.out_of_scope_total > 0
    assert heldout_scores.out_of_scope_to_fallback == heldout_scores.out_of_scope_total, _confusions(
        heldout_scores
    )


def test_heldout_faq_questions_get_their_topic_at_least_90_percent(heldout_scores: Scores) -> None:
    assert heldout_scores.faq_total >= 80
    errors = "\n".join(
        f"  {c.expected} -> {c.predicted} ({c.confidence:.2f}): {c.text}"
        for c in heldout_scores.faq_confusions
    )
    assert heldout_scores.faq_accuracy >= MIN_FAQ_SELECTION, errors
