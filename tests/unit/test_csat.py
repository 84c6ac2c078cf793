"""The CSAT answer (`bot.csat.parse_rating`): buttons and typed numbers both count, nothing is guessed."""

from __future__ import annotations

import pytest

from bot.csat import parse_rating


@pytest.mark.parametrize(
    ("entity", "text", "rating"),
    [
        ("4", '/rate_help{"csat_rating": "4"}', 4),  # a button
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
