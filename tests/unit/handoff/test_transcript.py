"""The ticket's transcript: user and bot turns from Rasa-shaped events, every text through the redactor."""

from __future__ import annotations

from typing import Any

import pytest

from bot.handoff.transcript import (
    MAX_TURNS,
    Redaction,
    fallback_redact,
    load_redactor,
    merge_turns,
    transcript_turns,
)


class FakeRedactor:
    """Stands in for `bot.redaction.redact`: "SECRET-…" words are secrets. Records what it was given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str, /) -> Redaction:
        self.seen.append(text)
        words = [("[redacted]" if w.startswith("SECRET-") else w) for w in text.split(" ")]
        found = ("api_secret",) if "[redacted]" in words else ()
        return Redaction(" ".join(words), found)


EVENTS: list[dict[str, Any]] = [
    {"event": "action", "name": "action_session_start", "timestamp": 1.0},
    {"event": "user", "text": "hi", "timestamp": 2.0, "parse_data": {"intent": {"name": "greet"}}},
    {"event": "bot", "text": "Hello! How can I help?", "timestamp": 3.0},
    {"event": "slot", "name": "exchange", "value": "kraken", "timestamp": 3.5},
    {"event": "user", "text": "my secret is SECRET-abc123 please help", "timestamp": 4.0},
    {"event": "bot", "text": None, "data": {"custom": {"credential_form": {}}}, "timestamp": 5.0},
    {
        "event": "bot",
        "text": "Sam here, I'm looking.",
        "timestamp": 6.0,
        "metadata": {"keymedic_agent": "sam"},
    },
    {"event": "user", "text": "   ", "timestamp": 7.0},
]


def test_only_user_bot_and_agent_turns_are_kept_in_order_with_secrets_redacted() -> None:
    redactor = FakeRedactor()
    turns = transcript_turns(EVENTS, redactor)

    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "hi"),
        ("bot", "Hello! How can I help?"),
        ("user", "my secret is [redacted] please help"),
        ("agent", "Sam here, I'm looking."),
    ]
    assert turns[2]["redacted"] == ["api_secret"] and turns[0]["redacted"] == []
    assert turns[3]["agent"] == "sam"
    assert [t["timestamp"] for t in turns] == [2.0, 3.0, 4.0, 6.0]
    # Every text went through the redactor, the bot's and the agent's too.
    assert len(redactor.seen) == 4
    assert all("SECRET-abc123" not in str(t) for t in turns)


def test_long_texts_are_cut_after_redaction() -> None:
    text = "x " * 5000 + "SECRET-tail"
    [turn] = transcript_turns([{"event": "user", "text": text, "timestamp": 1}], FakeRedactor())
    assert len(turn["text"]) == 4000 and "SECRET" not in turn["text"]


def test_recording_the_same_events_twice_keeps_each_turn_once() -> None:
    first = transcript_turns(EVENTS[:4], FakeRedactor())
    everything = transcript_turns(EVENTS, FakeRedactor())
    merged = merge_turns(merge_turns([], first), everything)
    assert merged == everything
    assert merge_turns(merged, everything) == merged


def test_the_transcript_keeps_the_newest_turns() -> None:
    many = [{"event": "user", "text": f"message {n}", "timestamp": float(n)} for n in range(MAX_TURNS + 20)]
    merged = merge_turns([], transcript_turns(many, FakeRedactor()))
    assert len(merged) == MAX_TURNS and merged[-1]["text"] == f"message {MAX_TURNS + 19}"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("my kraken key stopped working yesterday", True),
        ("order OQCLML-BW3P3-BUCMWZ failed", True),
        ("key: 7hQ2xkP9Lm3vR8sT1wY4zA6bC0dE5fG2 thanks", False),
    ],
)
def test_the_fallback_masks_token_like_words_only(text: str, kept: bool) -> None:
    redaction = fallback_redact(text)
    assert (redaction.text == text) is kept
    assert bool(redaction.kinds) is not kept


def test_the_real_redaction_module_is_adapted_when_it_is_there() -> None:
    redaction = pytest.importorskip("bot.redaction")
    redact = load_redactor()
    assert redact is not fallback_redact
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY9x8y7"
    result = redact(f"my secret is {secret}")
    assert secret not in result.text and result.kinds
    assert isinstance(result, Redaction)
    assert redaction.redact("hello").text == "hello"


def test_a_form_link_in_the_conversation_never_reaches_the_transcript() -> None:
    # The bot sends Slack users the form as a link; whoever reads the ticket must not be able to open it.
    token = "it_" + "k" * 21 + "9" * 21 + "_"
    events = [
        {"event": "bot", "text": f"Open http://127.0.0.1:8080/intake/form#token={token}", "timestamp": 1.0},
        {"event": "user", "text": f"it says {token} is used", "timestamp": 2.0},
    ]
    turns = transcript_turns(events, load_redactor())
    assert all(token not in turn["text"] for turn in turns)
    assert [turn["redacted"] for turn in turns] == [["form_token"], ["form_token"]]
