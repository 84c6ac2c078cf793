"""Issue 14's long tail over the real REST channel: everyday questions, each in a new conversation.

tests/nlu/questions_heldout.yml (written before tuning, never trained on) holds the questions and, for each,
a pattern its answer must match. The bot may fall back (the fallback's "did you mean" buttons, the
out-of-scope answer) on at most 5 % of them, and every other answer must be on topic. The issue's failures
are pinned one by one below, in new words.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import RasaStack
from tests.unit.test_no_removal_steps import removal_steps

pytestmark = pytest.mark.e2e

QUESTIONS = Path(__file__).resolve().parents[1] / "nlu" / "questions_heldout.yml"
MAX_FALLBACK_RATE = 0.05
# What the user sees when KeyMedic did not understand: the fallback's "did you mean" (actions/faq.py), Rasa's
# own fallback response, and the out-of-scope answer (domain.yml).
FALLBACK = re.compile(r"Did you mean one of these\?|Sorry, I didn't follow that|outside what I can help with")


def texts(replies: list[dict[str, object]]) -> str:
    return " ".join(str(reply.get("text", "")) for reply in replies)


@pytest.fixture(scope="module")
def answers(rasa_stack: RasaStack) -> list[tuple[str, str, str]]:
    questions = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    return [
        (q["ask"], str(q["expect"]), texts(rasa_stack.say(f"e2e-question-{i}", q["ask"])))
        for i, q in enumerate(questions)
    ]


def test_at_most_five_percent_of_everyday_questions_fall_back(answers: list[tuple[str, str, str]]) -> None:
    fallbacks = [question for question, _, reply in answers if FALLBACK.search(reply)]
    rate = len(fallbacks) / len(answers)
    print(f"everyday questions: {len(answers)}, fallback {len(fallbacks)} ({rate:.1%})")
    assert rate <= MAX_FALLBACK_RATE, "\n".join(fallbacks)


def test_every_answer_is_on_topic(answers: list[tuple[str, str, str]]) -> None:
    off_topic = [
        f"{question!r} -> {reply[:160]!r}"
        for question, expect, reply in answers
        if not FALLBACK.search(reply) and not re.search(expect, reply, re.IGNORECASE)
    ]
    on_topic = len(answers) - len(off_topic)
    print(f"everyday questions on topic: {on_topic}/{len(answers)}")
    assert off_topic == [], "\n".join(off_topic)


def test_no_answer_walks_through_removal(answers: list[tuple[str, str, str]]) -> None:
    assert {question: removal_steps(reply) for question, _, reply in answers if removal_steps(reply)} == {}


# -- the failures of issue 14, in new words ------------------------------------------------------------------


def test_updating_the_key_is_said_to_keep_the_edits_not_warned_about_as_removal(
    rasa_stack: RasaStack,
) -> None:
    reply = texts(rasa_stack.say("e2e-kb-edits", "will my notes survive if I put a new key in?"))
    assert re.search(r"keeps everything|all stay", reply), reply
    assert "Before removing an exchange" not in reply


def test_a_kucoin_passphrase_question_gets_kucoins_answer(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-kb-kucoin", "is there a passphrase on a kucoin api key?"))
    assert "KuCoin asks you to set a passphrase when you create the key" in reply, reply


def test_a_kraken_passphrase_question_says_there_is_none(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-kb-kraken", "what passphrase do I use for kraken"))
    assert "Kraken keys don't come with a passphrase" in reply, reply


def test_handing_over_a_key_is_explained_not_started_as_an_update(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-kb-safe", "am I safe giving you access to my exchange key?"))
    assert re.search(r"read-only", reply) and "Which exchange" not in reply, reply


def test_the_tab_can_close_during_a_resync(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-kb-tab", "if i close the page will the resync stop?"))
    assert "background" in reply, reply


def test_a_question_in_the_middle_of_the_key_form_is_answered_and_the_form_goes_on(
    rasa_stack: RasaStack,
) -> None:
    sender = "e2e-kb-form"
    started = texts(rasa_stack.say(sender, "my kucoin key stopped working"))
    assert started
    reply = texts(
        rasa_stack.say(sender, "quick question, do i need to keep this tab open during the resync?")
    )
    assert "background" in reply, reply
    follow = rasa_stack.say(sender, "what about a space copied with the secret?")
    assert "space" in texts(follow)
