"""Reading which exchange a message means (bot/exchange_mentions.py): corrections, negations, typos."""

from __future__ import annotations

import pytest

from bot.exchange_mentions import damerau_levenshtein, find_mentions, intended_exchange


@pytest.mark.parametrize(
    ("text", "current", "meant"),
    [
        ("sorry, I meant my KuCoin wallet, not Kraken", "kraken", "kucoin"),
        ("sorry, I meant my KuCoin wallet, not Kraken", None, "kucoin"),
        ("not kraken, kucoin", "kraken", "kucoin"),
        ("it's not the kraken one but the bybit one", None, "bybit"),
        ("instead of kraken use kucoin", "kraken", "kucoin"),
        ("kucoin rather than kraken", None, "kucoin"),
        ("I don't have kraken, I meant gemini", "kraken", "gemini"),
        ("actually it's my coinbase account", "kraken", "coinbase"),
        ("wrong one, the okx wallet", "kraken", "okx"),
        ("kraken isn't working, it's kucoin", "kraken", "kucoin"),
        ("no wait, kucoin", "kraken", "kucoin"),
        ("my binance us account", None, "binance_us"),
        ("my coin base account", None, "coinbase"),
    ],
)
def test_the_exchange_the_user_means_wins_over_the_one_they_correct(
    text: str, current: str | None, meant: str
) -> None:
    resolved = intended_exchange(text, current=current)
    assert resolved is not None
    assert resolved.exchange == meant


@pytest.mark.parametrize(
    ("typed", "exchange"),
    [
        ("kucoinn", "kucoin"),
        ("krakn", "kraken"),
        ("coinbsae", "coinbase"),
        ("binanse us", "binance_us"),
        ("binanse", "binance"),
        ("bitstmap", "bitstamp"),
        ("my kucion wallet stopped", "kucoin"),
    ],
)
def test_a_small_typo_resolves_with_confidence(typed: str, exchange: str) -> None:
    resolved = intended_exchange(typed)
    assert resolved is not None
    assert (resolved.exchange, resolved.confident) == (exchange, True)


def test_a_typo_that_changes_the_first_letter_is_only_a_guess_to_confirm() -> None:
    resolved = intended_exchange("ucoin")
    assert resolved is not None
    assert (resolved.exchange, resolved.confident) == ("kucoin", False)


@pytest.mark.parametrize(
    "text",
    [
        "my finance app shows the wrong total",
        "I'm an active trader",
        "the bus was late",
        "my wallet stopped syncing",
        "not kraken",
    ],
)
def test_ordinary_words_and_negated_names_name_no_exchange(text: str) -> None:
    assert intended_exchange(text) is None


def test_a_word_before_a_name_is_not_read_as_a_misspelt_name() -> None:
    [mention] = find_mentions("i use a kucoin account")
    assert (mention.exchange, mention.typed, mention.distance) == ("kucoin", "kucoin", 0)


def test_every_name_is_found_and_the_negated_one_is_marked() -> None:
    mentions = find_mentions("sorry, I meant my KuCoin wallet, not Kraken")
    assert [(m.exchange, m.negated, m.marked) for m in mentions] == [
        ("kucoin", False, True),
        ("kraken", True, False),
    ]


def test_a_swap_of_neighbouring_letters_is_one_edit() -> None:
    assert damerau_levenshtein("coinbsae", "coinbase") == 1
    assert damerau_levenshtein("kraken", "kraken") == 0
    assert damerau_levenshtein("krakn", "kraken") == 1
    assert damerau_levenshtein("", "okx") == 3
