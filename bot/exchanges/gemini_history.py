"""Gemini history: past trades `POST /v1/mytrades` and deposits/withdrawals `POST /v1/transfers`
(reference/exchanges.md §7 "History").

Pagination by time: `timestamp` (ms) asks for the records on or after it, at most `limit_trades` (500) or
`limit_transfers` (50) of them. KeyMedic starts at 0 and moves `timestamp` to the newest record of each full
page. It keeps the boundary millisecond (the next page starts *at* it, not after it) and skips the ids it
already has there, so records sharing a millisecond across two pages are neither lost nor repeated; a full
page of one millisecond cannot be paged past and stops the sync with an error. A page shorter than the limit
is the last one. Trades are read for every symbol at once (no `symbol` parameter).

Ids: trades `trade:<tid>:<asset>` (two movements per trade, the fee on the leg of `fee_currency`), transfers
`transfer:<eid>`; both ids are Gemini's own and stable. Pending transfers are left for a later sync.

Nonce: `GeminiAuth`'s milliseconds, strictly increasing in the process, one call after the other (§0.2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from bot.exchanges._base import UnexpectedResponse
from bot.exchanges._history import (
    HistoryReader,
    Page,
    decimal,
    fee_or_none,
    from_ms,
    records,
    shape_error,
    trade_legs,
)
from bot.exchanges._http import Session
from bot.exchanges.gemini import GeminiAuth, GeminiClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["GeminiHistory", "trade_transactions", "transfer_transactions", "split_symbol"]

TRADES_LIMIT: Final = 500
TRANSFERS_LIMIT: Final = 50

# Quote currencies of Gemini's symbols, longest first so "GUSD" wins over "USD".
_QUOTES: Final = ("GUSD", "USDT", "USDC", "DAI", "USD", "EUR", "GBP", "SGD", "BTC", "ETH")


def split_symbol(symbol: str) -> tuple[str, str]:
    """`BTCUSD` → (`BTC`, `USD`); `ethbtc` → (`ETH`, `BTC`)."""
    upper = symbol.upper()
    for quote in _QUOTES:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    raise shape_error("Gemini", f"a trade in symbol {symbol!r}")


def trade_transactions(trade: Mapping[str, Any]) -> list[SourceTransaction]:
    """One trade as its two movements."""
    tid = trade.get("tid")
    if tid is None:
        raise shape_error("Gemini", "a trade")
    base, quote = split_symbol(str(trade.get("symbol", "")))
    amount, price = decimal(trade.get("amount"), "Gemini"), decimal(trade.get("price"), "Gemini")
    buy = str(trade.get("type", "")).lower() == "buy"
    return trade_legs(
        f"trade:{tid}",
        base=base,
        quote=quote,
        base_amount=amount if buy else -amount,
        quote_amount=-(amount * price) if buy else amount * price,
        occurred_at=from_ms(trade.get("timestampms")),
        fee=fee_or_none(trade.get("fee_amount"), "Gemini"),
        fee_asset=str(trade.get("fee_currency", quote)).upper(),
        raw=dict(trade),
    )


def transfer_transactions(transfer: Mapping[str, Any]) -> list[SourceTransaction]:
    """One transfer as a movement; a pending one as none yet."""
    eid, currency = transfer.get("eid"), transfer.get("currency")
    if eid is None or not currency:
        raise shape_error("Gemini", "a transfer")
    if str(transfer.get("status", "")).lower() == "pending":
        return []
    kind = str(transfer.get("type", "")).lower()
    amount = abs(decimal(transfer.get("amount"), "Gemini"))
    fee = fee_or_none(transfer.get("feeAmount"), "Gemini")
    return [
        SourceTransaction(
            exchange_tx_id=f"transfer:{eid}",
            kind=kind if kind in ("deposit", "withdrawal") else "transfer",
            asset=str(currency).upper(),
            amount=-amount if kind == "withdrawal" else amount,
            occurred_at=from_ms(transfer.get("timestampms")),
            fee=fee,
            fee_asset=str(currency).upper() if fee is not None else None,
            raw=dict(transfer),
        )
    ]


class GeminiHistory(HistoryReader):
    exchange = "gemini"
    client_class = GeminiClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = GeminiAuth(credentials.api_key, credentials.api_secret, session.prefix)
        walks: tuple[
            tuple[str, str, int, str, Callable[[Mapping[str, Any]], list[SourceTransaction]]], ...
        ] = (
            ("/v1/mytrades", "limit_trades", TRADES_LIMIT, "tid", trade_transactions),
            ("/v1/transfers", "limit_transfers", TRANSFERS_LIMIT, "eid", transfer_transactions),
        )
        for path, limit_name, limit, id_name, convert in walks:
            since = 0
            boundary: set[str] = set()
            while True:
                rows = records(
                    await session.call(
                        "POST",
                        path,
                        auth=auth,
                        decode=decode,
                        json_data={limit_name: limit, "timestamp": since},
                    ),
                    "Gemini",
                    path,
                )
                fresh = [row for row in rows if str(row.get(id_name)) not in boundary]
                yield [tx for row in fresh for tx in convert(row)]
                if len(rows) < limit:
                    break
                if not fresh:
                    raise UnexpectedResponse(
                        f"Gemini has more than {limit} records in one millisecond on {path}; KeyMedic cannot "
                        "page past them"
                    )
                newest = max(_ms(row) for row in rows)
                boundary = {str(row.get(id_name)) for row in rows if _ms(row) == newest}
                since = newest


def _ms(row: Mapping[str, Any]) -> int:
    try:
        return int(str(row.get("timestampms")))
    except ValueError:
        raise shape_error("Gemini", "a record's timestampms") from None
