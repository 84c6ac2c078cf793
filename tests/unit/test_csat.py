"""The CSAT answer (`bot.csat.parse_rating`): buttons and typed numbers both count, nothing is guessed."""

from __future__ import annotations

import pytest

from bot.csat import offers_rating, parse_rating, rating_buttons, typed_rating


@pytest.mark.parametrize(
    ("entity", "text", "rating"),
    [
        ("4", '/inform{"csat_rating": "4"}', 4),  # a button
        (None, "5", 5),
        (None, " 3 ", 3),
        (None, "4/5", 4),
        (None, "3 out of 5", 3),
        (None, "I'd give it a 2", 2),
        (None, "1, it didn't help", 1),
        ("9", "5", 5),  # an entity out of range does not win over a good number in the text
    ],
)
def test_a_rating_from_a_button_or_typed(entity: object, text: str, rating: int) -> None:
    assert parse_rating(entity, text) == rating


@pytest.mark.parametrize(
    "text",
    ["", "great", "0", "6", "10", "-3", "4.5", "3 or 4", "2FA broke it", "v3 keys", "12345"],
)
def test_no_rating_is_guessed(text: str) -> None:
    assert parse_rating(None, text) is None


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("4", 4),
        ("4/5", 4),
        ("five", 5),
        ("Four stars", 4),
        ("4 stars!", 4),
        ("a 3", 3),
        ("3 out of 5", 3),
        ("I'd give you a 2", 2),
        ("my rating is 1", 1),
        ("rating: 5", 5),
    ],
)
def test_a_message_that_is_only_a_rating_is_read(text: str, rating: int) -> None:
    reading = typed_rating(text)
    assert reading is not None and reading.rating == rating


@pytest.mark.parametrize(
    "text",
    ["0", "6", "12", "4.5", "3 or 4", "kraken 2", "2FA", "error 5", "5 connections", "I have 3 wallets", ""],
)
def test_a_message_with_more_than_a_rating_is_left_to_the_classifier(text: str) -> None:
    assert typed_rating(text) is None


def test_the_reading_spans_the_number_as_the_buttons_entity_would() -> None:
    assert typed_rating("I'd give it a 4 out of 5") == (4, 14, 15)
    assert typed_rating("five stars") == (5, 0, 4)


def test_only_the_rating_buttons_offer_a_rating() -> None:
    assert offers_rating([{"title": "4", "payload": '/inform{"csat_rating": "4"}'}])
    assert not offers_rating([{"title": "Main", "payload": '/inform{"wallet_id": "2"}'}])
    assert not offers_rating(None)


def test_the_question_offers_five_buttons_on_inform_so_csat_adds_no_intent() -> None:
    buttons = rating_buttons()
    assert [b["title"] for b in buttons] == ["1", "2", "3", "4", "5"]
    assert buttons[3]["payload"] == '/inform{"csat_rating": "4"}'
    assert offers_rating(buttons)
