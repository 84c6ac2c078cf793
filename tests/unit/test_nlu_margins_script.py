"""scripts/nlu_margins.py finds the sentences the suites send, and leaves code and docstrings out."""

from pathlib import Path

from scripts.nlu_margins import SUITES, looks_like_a_message, phrasings


def test_a_typed_sentence_counts_and_code_does_not() -> None:
    assert looks_like_a_message("my kraken key stopped working")
    assert looks_like_a_message("is the sync done yet?")
    assert not looks_like_a_message("hi")  # one word: an id or a label as often as a message
    assert not looks_like_a_message('/inform{"exchange": "kraken"}')
    assert not looks_like_a_message("SELECT count(*) FROM events")
    assert not looks_like_a_message(" padded ")


def test_literals_are_found_and_docstrings_skipped(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        '"""A module docstring of several words."""\n'
        "def test_it(stack):\n"
        '    """The test explains itself here."""\n'
        '    stack.say("u", "my wallet stopped syncing")\n'
        '    assert "passed every check" in stack.last\n'
    )
    assert phrasings([tmp_path]) == ["my wallet stopped syncing", "passed every check"]


def test_the_suites_fault_message_is_among_them() -> None:
    assert "my kraken key stopped working" in phrasings(SUITES)
