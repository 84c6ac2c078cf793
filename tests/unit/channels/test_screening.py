"""`channels.screening.screen`: what every channel does to a message before Rasa sees it."""

from __future__ import annotations

from bot.redaction import REDACTED
from bot.sandbox.scenarios import credentials_for
from channels.screening import (
    MAX_MESSAGE_CHARS,
    REDACTED_METADATA_KEY,
    REFUSED_METADATA_KEY,
    TOO_LONG,
    refusal,
    screen,
)

FORM_TOKEN = "it_" + "Q" * 20 + "w" * 20 + "-_9"


def test_a_pasted_form_link_is_taken_out_without_asking_to_revoke_a_key() -> None:
    screened = screen(f"this link http://127.0.0.1:8080/intake/form#token={FORM_TOKEN} fails", None)
    assert FORM_TOKEN not in screened.text
    assert REDACTED in screened.text
    # Nothing to revoke: the channel's revoke notice goes out only for kinds, and there are none.
    assert screened.kinds == ()
    assert screened.metadata is None


def test_a_pasted_key_is_reported_by_kind() -> None:
    secret = credentials_for("kraken", "valid")["api_secret"]
    screened = screen(f"secret {secret}", {"note": FORM_TOKEN})
    assert secret not in screened.text
    assert screened.kinds == ("kraken_secret",)
    assert screened.metadata == {"note": REDACTED, REDACTED_METADATA_KEY: ["kraken_secret"]}


def test_a_message_over_the_limit_is_refused_before_anything_reads_it() -> None:
    assert refusal("word " * 200_000, None) == TOO_LONG
    assert refusal("x" * (MAX_MESSAGE_CHARS + 1), None) == TOO_LONG
    assert f"{MAX_MESSAGE_CHARS:,} characters" in TOO_LONG


def test_a_message_at_the_limit_is_screened_as_usual() -> None:
    assert refusal("x" * MAX_MESSAGE_CHARS, {"locale": "en"}) is None
    assert refusal("hi", None) is None


def test_oversized_metadata_is_refused_at_any_depth() -> None:
    assert refusal("hi", {"a": [{"b": "x" * 20_000}]}) == TOO_LONG
    assert refusal("hi", "y" * 20_000) == TOO_LONG  # the widget may send its metadata as a JSON string
    assert refusal("hi", {"n": list(range(20_000))}) == TOO_LONG


def test_refusing_a_huge_message_costs_no_more_than_a_short_one() -> None:
    import time

    huge = "word " * 200_000  # 1 MB
    started = time.perf_counter()
    for _ in range(1000):
        refusal(huge, {"locale": "en"})
    assert time.perf_counter() - started < 0.05  # 1000 refusals: well under a millisecond each


def test_a_client_cannot_mark_its_own_message_refused() -> None:
    screened = screen("hi", {REFUSED_METADATA_KEY: "too_long", "locale": "en"})
    assert screened.metadata == {"locale": "en"}


def test_text_cut_off_unread_is_not_reported_as_a_secret() -> None:
    assert screen("word " * 30_000, None).kinds == ()
