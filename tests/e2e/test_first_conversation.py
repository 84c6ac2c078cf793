"""The first conversation over the real REST channel: greeting, small talk, and fallbacks."""

from __future__ import annotations

import sqlite3

import pytest

from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e


def texts(replies: list[dict[str, object]]) -> str:
    return " ".join(str(reply.get("text", "")) for reply in replies)


def test_greeting_introduces_keymedic_and_asks_what_is_wrong(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-greet", "hello there"))
    assert "KeyMedic" in reply
    assert "What's going on with your wallet?" in reply


def test_bot_challenge_says_it_is_not_a_person(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-challenge", "am i chatting with a human or a bot?"))
    assert "not a person" in reply


def test_off_topic_question_gets_out_of_scope_answer_not_a_flow(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-oos", "can you recommend a good pizza place nearby"))
    assert "outside what I can help with" in reply


def test_gibberish_reaches_the_fallback(rasa_stack: RasaStack) -> None:
    reply = texts(rasa_stack.say("e2e-gibberish", "zxqv plorb wubba frindle"))
    assert "Sorry, I didn't follow that." in reply or "outside what I can help with" in reply


def test_conversation_is_kept_in_the_sql_tracker_store(rasa_stack: RasaStack) -> None:
    rasa_stack.say("e2e-tracker", "hi")
    rasa_stack.say("e2e-tracker", "thank you")
    with sqlite3.connect(rasa_stack.tracker_db) as db:
        rows = db.execute(
            "SELECT type_name FROM events WHERE sender_id = ? ORDER BY id", ("e2e-tracker",)
        ).fetchall()
    types = [row[0] for row in rows]
    assert types.count("user") == 2
    assert "bot" in types
