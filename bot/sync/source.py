"""Where a resync reads a wallet's history from: the registry of `HistorySource` adapters.

The protocol and its types live in `bot.types.history` (the exchange adapters implement them, and
`bot.exchanges` sits below this package). An adapter is a class with an async generator
`pages(wallet, credentials)` that yields the exchange's history page by page. Register one by adding a line
to `ADAPTERS` below: `"kraken": "bot.exchanges.kraken_history:KrakenHistory"` names a zero-argument callable
(a class is fine) that returns a `HistorySource`. It is imported only when a sync of that exchange runs, so
importing this module stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bot.types.history import HistoryError, HistorySource

__all__ = ["NoHistorySource", "ADAPTERS", "default_history_source"]


class NoHistorySource(HistoryError):
    def __init__(self, exchange: str) -> None:
        super().__init__(f"KeyMedic cannot read {exchange} history yet")
        self.exchange = exchange


# exchange id -> "module:callable" returning a HistorySource (see the module docstring).
ADAPTERS: dict[str, str] = {
    "coinbase": "bot.exchanges.coinbase_history:CoinbaseHistory",
    "kraken": "bot.exchanges.kraken_history:KrakenHistory",
    "kucoin": "bot.exchanges.kucoin_history:KucoinHistory",
    "binance": "bot.exchanges.binance_history:BinanceHistory",
    "binance_us": "bot.exchanges.binance_history:BinanceUsHistory",
    "okx": "bot.exchanges.okx_history:OkxHistory",
    "gemini": "bot.exchanges.gemini_history:GeminiHistory",
    "bitstamp": "bot.exchanges.bitstamp_history:BitstampHistory",
    "bybit": "bot.exchanges.bybit_history:BybitHistory",
    "gate_io": "bot.exchanges.gate_io_history:GateHistory",
    "crypto_com": "bot.exchanges.crypto_com_history:CryptoComHistory",
    "bitfinex": "bot.exchanges.bitfinex_history:BitfinexHistory",
}


def default_history_source(exchange: str) -> HistorySource:
    """The registered adapter for an exchange; raises `NoHistorySource` when there is none yet."""
    target = ADAPTERS.get(exchange)
    if target is None:
        raise NoHistorySource(exchange)
    module_name, _, attribute = target.partition(":")
    factory: Callable[[], HistorySource] = getattr(importlib.import_module(module_name), attribute)
    return factory()
