"""The first conversation over the real REST channel: greeting, small talk, and fallbacks."""

from __future__ import annotations

import sqlite3

import pytest

from tests.e2e.conftest import RasaStack

# Also on Rasa's own tracker store (tests/e2e/conftest.py): a store could change what these see.
pytestmark = [pytest.mark.e2e, pytest.mark.both_stores]


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


def test_the_stack_runs_on_the_tracker_store_it_names(rasa_stack: RasaStack, tracker_store: str) -> None:
    # Only the windowed store writes a snapshot at each turn's end; Rasa's own writes events alone.
    rasa_stack.say("e2e-which-store", "hi")
    with sqlite3.connect(rasa_stack.tracker_db) as db:
        (snapshots,) = db.execute(
            "SELECT count(*) FROM keymedic_tracker_snapshots WHERE sender_id = ?", ("e2e-which-store",)
        ).fetchone()
    assert (snapshots > 0) == (tracker_store == "windowed")
