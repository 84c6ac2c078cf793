"""The exchange ids of the NLU contract (DESIGN §3) and how people actually name those exchanges.

Rasa's `EntitySynonymMapper` normalises the spellings listed in `data/nlu/exchanges.yml`; this module is the
framework-free twin that actions and the CLI use for anything the mapper left unnormalised (a typo DIET still
tagged, a button payload, a CLI flag). A test keeps the two lists in agreement.
"""

from __future__ import annotations

import difflib
import re
from typing import Final, Literal, get_args

__all__ = ["EXCHANGE_IDS", "ExchangeId", "ALIASES", "DISPLAY_NAMES", "normalize_exchange", "display_name"]

ExchangeId = Literal[
    "coinbase",
    "kraken",
    "kucoin",
    "binance",
    "binance_us",
    "okx",
    "gemini",
    "bitstamp",
    "bitfinex",
    "crypto_com",
    "gate_io",
    "bybit",
]

EXCHANGE_IDS: Final[tuple[ExchangeId, ...]] = get_args(ExchangeId)

DISPLAY_NAMES: Final[dict[ExchangeId, str]] = {
    "coinbase": "Coinbase",
    "kraken": "Kraken",
    "kucoin": "KuCoin",
    "binance": "Binance",
    "binance_us": "Binance.US",
    "okx": "OKX",
    "gemini": "Gemini",
    "bitstamp": "Bitstamp",
    "bitfinex": "Bitfinex",
    "crypto_com": "Crypto.com",
    "gate_io": "Gate.io",
    "bybit": "Bybit",
}

# Spellings users type, already folded by `_fold` (lower case, separators removed). The id itself and its
# display name are added below, so only the other names need listing.
ALIASES: Final[dict[str, ExchangeId]] = {
    "coinbasepro": "coinbase",
    "coinbaseadvanced": "coinbase",
    "coinbaseadvancedtrade": "coinbase",
    "coinbaseprime": "coinbase",
    "coinbaseexchange": "coinbase",
    "cb": "coinbase",
    "cbpro": "coinbase",
    "gdax": "coinbase",
    "krakenpro": "kraken",
    "kucoinexchange": "kucoin",
    "kc": "kucoin",
    "bnb": "binance",
    "binancecom": "binance",
    "binanceglobal": "binance",
    "binanceus": "binance_us",
    "binanceusa": "binance_us",
    "bus": "binance_us",
    "okex": "okx",
    "okxexchange": "okx",
    "geminiexchange": "gemini",
    "activetrader": "gemini",
    "geminiactivetrader": "gemini",
    "bitstampexchange": "bitstamp",
    "bfx": "bitfinex",
    "cryptocom": "crypto_com",
    "cryptocomexchange": "crypto_com",
    "cdc": "crypto_com",
    "cro": "crypto_com",
    "gate": "gate_io",
    "gateio": "gate_io",
    "gatecom": "gate_io",
    "bybitexchange": "bybit",
}

_INDEX: Final[dict[str, ExchangeId]] = {
    **{_id.replace("_", ""): _id for _id in EXCHANGE_IDS},
    **{re.sub(r"[^a-z0-9]", "", name.lower()): _id for _id, name in DISPLAY_NAMES.items()},
    **ALIASES,
}

# Short aliases ("cb", "kc") are too close to other words for fuzzy matching; only longer names get it.
_FUZZY_MIN_LENGTH: Final = 5


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def normalize_exchange(text: str | None) -> ExchangeId | None:
    """Map a user's name for an exchange ("Coinbase Pro", "krakn", "crypto.com") to its id, or None."""
    if not text:
        return None
    folded = _fold(text)
    if folded in _INDEX:
        return _INDEX[folded]
    if len(folded) < _FUZZY_MIN_LENGTH:
        return None
    candidates = [name for name in _INDEX if len(name) >= _FUZZY_MIN_LENGTH]
    match = difflib.get_close_matches(folded, candidates, n=1, cutoff=0.8)
    return _INDEX[match[0]] if match else None


def display_name(exchange: ExchangeId) -> str:
    """The name to show a user for an exchange id."""
    return DISPLAY_NAMES[exchange]
