"""The bench's users: varied wordings, numbered across a run (scripts/bench/wording.py, plan.Sizes)."""

from __future__ import annotations

import itertools

from scripts.bench import wording
from scripts.bench.plan import DEFAULT, QUICK, Level, Sizes
from scripts.bench.wording import Wording, common, described


def test_a_described_turn_is_every_combination_of_its_parts_once() -> None:
    turn = described("ask", ("", "so "), ("a", "b"), ("", "?"))
    assert sorted(turn.wordings) == ["a", "a?", "b", "b?", "so a", "so a?", "so b", "so b?"]


def test_no_described_turn_repeats_within_a_default_run_and_short_answers_do() -> None:
    script = Wording(wording.KEYMEDIC)
    conversations = DEFAULT.conversations(len(wording.KEYMEDIC))
    for position, turn in enumerate(script.turns):
        texts = script.texts_of_turn(position, conversations)
        if len(turn.wordings) > 100:
            assert len(set(texts)) == conversations, turn.intent
        else:
            assert set(texts) == set(turn.wordings), turn.intent


def test_phases_continue_the_numbering_instead_of_starting_again() -> None:
    script = Wording(
        (common("greet", "hi", "hello", "hey"), described("ask", ("", "so "), ("a", "b"), ("",)))
    )
    first, second = script.next_script(), script.next_script()
    assert (first, second) == (script.script(0), script.script(1))
    assert first[1] != second[1]


def test_the_long_conversation_takes_a_new_conversations_words_at_each_repetition() -> None:
    script = Wording((common("greet", "hi"), described("ask", ("",), ("a", "b", "c"), ("",))))
    messages = list(itertools.islice(script.stream(), 6))
    assert messages[0::2] == ["hi", "hi", "hi"]
    assert sorted(messages[1::2]) == ["a", "b", "c"]


def test_the_same_seed_gives_the_same_run() -> None:
    assert Wording(wording.KEYMEDIC).script(42) == Wording(wording.KEYMEDIC).script(42)
    assert Wording(wording.KEYMEDIC, seed=1).script(42) != Wording(wording.KEYMEDIC).script(42)


def test_both_bots_have_scripts_of_the_same_length() -> None:
    assert len(wording.KEYMEDIC) == len(wording.STARTER) == 6


def test_a_run_counts_transcript_warmup_levels_and_long_conversation() -> None:
    sizes = Sizes(
        levels=(Level(1, 2), Level(5, 3)),
        long_turns=13,
        long_window=2,
        warmup_conversations=20,
        phase_timeout_s=1,
        request_timeout_s=1,
    )
    assert sizes.warmup_level == Level(10, 1)
    assert sizes.conversations(6) == 1 + 10 + 2 + 15 + 3
    assert QUICK.conversations(6) == 1 + 2 + 3 + 10 + 50 + 5
