"""Where a resync reads a wallet's history from: the `HistorySource` protocol, and the seam for adapters.

The real adapters wrap the exchange clients in `bot/exchanges/` (another piece of work). An adapter is a class
with an async generator `pages(wallet, credentials)` that yields the exchange's history page by page.
Register one by adding a line to `ADAPTERS` below: `"kraken": "bot.exchanges.kraken_history:KrakenHistory"`
names a zero-argument callable (a class is fine) that returns a `HistorySource`. It is imported only when a
sync of that exchange runs, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from bot.diagnosis.model import Credentials

__all__ = [
    "SourceTransaction",
    "WalletRef",
    "HistorySource",
    "HistorySourceFactory",
    "HistoryError",
    "NoHistorySource",
    "ADAPTERS",
    "default_history_source",
]


class HistoryError(Exception):
    """Root of the errors a history source raises. Its message is stored on the sync run, so it must never
    contain a secret (the runner also masks the wallet's own secrets in it, as a second line of defence)."""


class NoHistorySource(HistoryError):
    def __init__(self, exchange: str) -> None:
        super().__init__(f"KeyMedic cannot read {exchange} history yet")
        self.exchange = exchange


@dataclass(frozen=True)
class SourceTransaction:
    """One transaction as the exchange reports it; `exchange_tx_id` (its own id there) is the merge key."""

    exchange_tx_id: str
    kind: str
    asset: str
    amount: Decimal
    occurred_at: datetime
    fee: Decimal | None = None
    fee_asset: str | None = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WalletRef:
    """What a source needs to know about the wallet it reads."""

    wallet_id: int
    exchange: str
    account_label: str


class HistorySource(Protocol):
    """Reads a wallet's full transaction history from its exchange."""

    def pages(
        self, wallet: WalletRef, credentials: Credentials
    ) -> AsyncIterator[Sequence[SourceTransaction]]:
        """Yield the history one page at a time (any order; the same id twice means the later one wins).
        Raise a `HistoryError` (or let a client error through) when it cannot be read completely: a partial
        history is never applied."""
        ...


HistorySourceFactory = Callable[[str], HistorySource]

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
