"""Live exchange clients: request signing, the calls a key diagnosis needs, and each exchange's error map.

One module per exchange id (DESIGN §3): `coinbase`, `kraken`, `kucoin`, `binance` (also `binance_us`), `okx`,
`gemini`, `bitstamp`, `bybit`, `gate_io`, `crypto_com`, `bitfinex`. Shared pieces: `_base` (error tree,
findings, client protocol) and `_http` (deadline, retries, the pooled client). Modules load on first use, so
importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bot.exchanges._base import ExchangeClient

__all__ = ["LIVE_CLIENTS", "client_class"]

# exchange id -> "module:class" of its live client.
LIVE_CLIENTS: Final[dict[str, str]] = {
    "coinbase": "bot.exchanges.coinbase:CoinbaseClient",
    "kraken": "bot.exchanges.kraken:KrakenClient",
    "kucoin": "bot.exchanges.kucoin:KucoinClient",
    "binance": "bot.exchanges.binance:BinanceClient",
    "binance_us": "bot.exchanges.binance:BinanceUsClient",
    "okx": "bot.exchanges.okx:OkxClient",
    "gemini": "bot.exchanges.gemini:GeminiClient",
    "bitstamp": "bot.exchanges.bitstamp:BitstampClient",
    "bybit": "bot.exchanges.bybit:BybitClient",
    "gate_io": "bot.exchanges.gate_io:GateClient",
    "crypto_com": "bot.exchanges.crypto_com:CryptoComClient",
    "bitfinex": "bot.exchanges.bitfinex:BitfinexClient",
}


def client_class(exchange: str) -> type[ExchangeClient]:
    """The live client class for an exchange id; `KeyError` when there is none."""
    module_name, _, class_name = LIVE_CLIENTS[exchange].partition(":")
    cls: type[ExchangeClient] = getattr(importlib.import_module(module_name), class_name)
    return cls
