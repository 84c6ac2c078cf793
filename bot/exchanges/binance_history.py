"""Binance and Binance.US history (reference/exchanges.md §5 "History"): there is no "all my history" call.

- **Deposits** `GET /sapi/v1/capital/deposit/hisrec` and **withdrawals** `GET
  /sapi/v1/capital/withdraw/history` accept at most 90 days between `startTime` and `endTime`, so KeyMedic
  walks 90-day windows from the exchange's launch (July 2017; Binance.US September 2019) to now, each window
  paged with `offset` and `limit=1000`. Only completed ones are kept (deposit status 1 or 6, withdrawal status
  6); a pending one comes in with a later sync.
- **Trades** `GET /api/v3/myTrades` need a `symbol`. The symbols tried are the pairs of assets the account has
  seen (its balances, deposits and withdrawals) with the usual quote assets; Binance answers `-1121 Invalid
  symbol` for a pair it does not list, which is skipped. Each symbol is paged with `fromId` (trade ids grow
  per symbol) from 0, `limit=1000`. A trade in an asset that never appears in the balances, deposits or
  withdrawals is not found: a known limit of Binance's API (docs/store.md "History adapters").

Ids: `deposit:<id>`, `withdrawal:<id>`, `trade:<symbol>:<id>:<asset>` (a trade is two movements; the
commission sits on the leg of its own asset). Binance's ids are stable.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, Final

from bot.exchanges._base import UnexpectedResponse
from bot.exchanges._history import (
    HistoryReader,
    Page,
    decimal,
    fee_or_none,
    from_ms,
    from_utc_text,
    records,
    shape_error,
    trade_legs,
)
from bot.exchanges._http import Session
from bot.exchanges.binance import BinanceAuth, BinanceClient, BinanceUsClient
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = [
    "BinanceHistory",
    "BinanceUsHistory",
    "deposit_transaction",
    "withdrawal_transaction",
    "trade_transactions",
    "windows",
    "candidate_symbols",
]

PAGE_SIZE: Final = 1000
WINDOW_MS: Final = 90 * 86_400_000
DEPOSITS: Final = "/sapi/v1/capital/deposit/hisrec"
WITHDRAWALS: Final = "/sapi/v1/capital/withdraw/history"
TRADES: Final = "/api/v3/myTrades"
INVALID_SYMBOL: Final = "-1121"

# Quote assets of Binance's spot markets, tried against every asset the account has seen.
QUOTES: Final = (
    "USDT",
    "BTC",
    "ETH",
    "BNB",
    "USDC",
    "FDUSD",
    "BUSD",
    "TUSD",
    "DAI",
    "EUR",
    "USD",
    "TRY",
    "BRL",
)

_DEPOSIT_DONE: Final = {1, 6}  # 1 success, 6 credited but cannot withdraw
_WITHDRAWAL_DONE: Final = 6  # completed


def windows(start_ms: int, end_ms: int, size_ms: int = WINDOW_MS) -> Iterator[tuple[int, int]]:
    """Consecutive inclusive `(startTime, endTime)` windows of at most `size_ms` covering start..end."""
    while start_ms <= end_ms:
        stop = min(start_ms + size_ms - 1, end_ms)
        yield start_ms, stop
        start_ms = stop + 1


def candidate_symbols(assets: set[str]) -> list[tuple[str, str, str]]:
    """`(symbol, base, quote)` for every pair of assets the account has seen whose quote is a usual quote
    asset, in a stable order."""
    return [
        (base + quote, base, quote)
        for base in sorted(assets)
        for quote in QUOTES
        if quote in assets and quote != base
    ]


def deposit_transaction(row: Mapping[str, Any]) -> SourceTransaction | None:
    """A completed deposit; None while it is pending."""
    if row.get("status") not in _DEPOSIT_DONE:
        return None
    row_id, coin = row.get("id"), row.get("coin")
    if not row_id or not coin:
        raise shape_error("Binance", "a deposit")
    return SourceTransaction(
        exchange_tx_id=f"deposit:{row_id}",
        kind="deposit",
        asset=str(coin),
        amount=abs(decimal(row.get("amount"), "Binance")),
        occurred_at=from_ms(row.get("insertTime")),
        raw=dict(row),
    )


def withdrawal_transaction(row: Mapping[str, Any]) -> SourceTransaction | None:
    """A completed withdrawal (negative); None until it completes."""
    if row.get("status") != _WITHDRAWAL_DONE:
        return None
    row_id, coin = row.get("id"), row.get("coin")
    if not row_id or not coin:
        raise shape_error("Binance", "a withdrawal")
    fee = fee_or_none(row.get("transactionFee"), "Binance")
    return SourceTransaction(
        exchange_tx_id=f"withdrawal:{row_id}",
        kind="withdrawal",
        asset=str(coin),
        amount=-abs(decimal(row.get("amount"), "Binance")),
        # applyTime is "2019-10-12 11:12:02" in UTC.
        occurred_at=from_utc_text(row.get("completeTime") or row.get("applyTime")),
        fee=fee,
        fee_asset=str(coin) if fee is not None else None,
        raw=dict(row),
    )


def trade_transactions(
    symbol: str, base: str, quote: str, trade: Mapping[str, Any]
) -> list[SourceTransaction]:
    """One trade of `symbol` (= base + quote) as its two movements."""
    trade_id = trade.get("id")
    if trade_id is None:
        raise shape_error("Binance", "a trade")
    qty = abs(decimal(trade.get("qty"), "Binance"))
    quote_qty = abs(decimal(trade.get("quoteQty"), "Binance"))
    buyer = trade.get("isBuyer") is True
    return trade_legs(
        f"trade:{symbol}:{trade_id}",
        base=base,
        quote=quote,
        base_amount=qty if buyer else -qty,
        quote_amount=-quote_qty if buyer else quote_qty,
        occurred_at=from_ms(trade.get("time")),
        fee=fee_or_none(trade.get("commission"), "Binance"),
        fee_asset=str(trade.get("commissionAsset") or base),
        raw=dict(trade),
    )


class BinanceHistory(HistoryReader):
    exchange = "binance"
    client_class: ClassVar[type[BinanceClient]] = BinanceClient
    # Binance opened in July 2017: no account has anything older.
    history_start: ClassVar[datetime] = datetime(2017, 7, 1, tzinfo=timezone.utc)

    def __init__(self, *, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock = clock

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = BinanceAuth(credentials.api_key, credentials.api_secret)
        decode = self.client_class(credentials).decode
        assets: set[str] = set()

        async def call(path: str, params: dict[str, str]) -> list[dict[str, Any]]:
            return records(
                await session.call("GET", path, auth=auth, decode=decode, params=params), self.name, path
            )

        now_ms = int(self._clock() * 1000)
        start_ms = int(self.history_start.timestamp() * 1000)
        convert: dict[str, Callable[[Mapping[str, Any]], SourceTransaction | None]] = {
            DEPOSITS: deposit_transaction,
            WITHDRAWALS: withdrawal_transaction,
        }
        for path, to_transaction in convert.items():
            for window_start, window_end in windows(start_ms, now_ms):
                offset = 0
                while True:
                    rows = await call(
                        path,
                        {
                            "startTime": str(window_start),
                            "endTime": str(window_end),
                            "offset": str(offset),
                            "limit": str(PAGE_SIZE),
                        },
                    )
                    assets.update(str(row["coin"]) for row in rows if row.get("coin"))
                    yield [tx for tx in map(to_transaction, rows) if tx is not None]
                    if len(rows) < PAGE_SIZE:
                        break
                    offset += len(rows)

        account = await session.call("GET", "/api/v3/account", auth=auth, decode=decode)
        balances = account.get("balances") if isinstance(account, dict) else None
        assets.update(str(b["asset"]) for b in records(balances, self.name, "the account") if b.get("asset"))

        for symbol, base, quote in candidate_symbols(assets):
            from_id = 0
            while True:
                try:
                    trades = await call(
                        TRADES, {"symbol": symbol, "fromId": str(from_id), "limit": str(PAGE_SIZE)}
                    )
                except UnexpectedResponse as exc:
                    if exc.raw_code == INVALID_SYMBOL:
                        break  # not a market on this exchange
                    raise
                yield [tx for trade in trades for tx in trade_transactions(symbol, base, quote, trade)]
                if len(trades) < PAGE_SIZE:
                    break
                from_id = max(_trade_id(t) for t in trades) + 1


class BinanceUsHistory(BinanceHistory):
    exchange = "binance_us"
    client_class = BinanceUsClient
    # Binance.US opened in September 2019.
    history_start = datetime(2019, 9, 1, tzinfo=timezone.utc)


def _trade_id(trade: Mapping[str, Any]) -> int:
    try:
        return int(str(trade.get("id")))
    except ValueError:
        raise shape_error("Binance", "a trade id") from None
