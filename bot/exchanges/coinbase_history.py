"""Coinbase history: Advanced Trade fills, `GET /api/v3/brokerage/orders/historical/fills`
(reference/exchanges.md §2 "History").

Pagination: `limit` a page and an opaque `cursor`; each answer carries the cursor of the next page, empty
after the last. The JWT's `uri` never includes the query string (sieblyio/coinbase-api#62), which
`CoinbaseAuth` already does.

A fill becomes two movements (`<entry_id>:<base>` and `<entry_id>:<quote>`), the commission on the quote leg
(Coinbase charges it in the quote currency). `entry_id` is unique per fill and stable. Deposits and
withdrawals live in the Coinbase App v2 API (`/v2/accounts/{id}/transactions`), which KeyMedic does not read
yet (docs/store.md "History adapters").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any, Final

from bot.exchanges._history import (
    CursorGuard,
    HistoryReader,
    Page,
    decimal,
    fee_or_none,
    from_rfc3339,
    records,
    shape_error,
    trade_legs,
)
from bot.exchanges._http import Session
from bot.exchanges.coinbase import CoinbaseAuth, CoinbaseClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["CoinbaseHistory", "fill_transactions"]

PAGE_SIZE: Final = 100
ENDPOINT: Final = "/api/v3/brokerage/orders/historical/fills"


def fill_transactions(fill: Mapping[str, Any]) -> list[SourceTransaction]:
    """One fill as its two movements."""
    entry_id, product = fill.get("entry_id"), str(fill.get("product_id", ""))
    base, _, quote = product.partition("-")
    if not entry_id or not base or not quote:
        raise shape_error("Coinbase", "a fill")
    price, size = decimal(fill.get("price"), "Coinbase"), decimal(fill.get("size"), "Coinbase")
    if fill.get("size_in_quote") is True:
        quote_size = size
        base_size = size / price if price else Decimal(0)
    else:
        base_size, quote_size = size, size * price
    buy = str(fill.get("side", "")).upper() == "BUY"
    return trade_legs(
        str(entry_id),
        base=base,
        quote=quote,
        base_amount=base_size if buy else -base_size,
        quote_amount=-quote_size if buy else quote_size,
        occurred_at=from_rfc3339(fill.get("trade_time")),
        fee=fee_or_none(fill.get("commission"), "Coinbase"),
        fee_asset=quote,
        raw=dict(fill),
    )


class CoinbaseHistory(HistoryReader):
    exchange = "coinbase"
    client_class = CoinbaseClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = CoinbaseAuth(credentials.api_key, credentials.api_secret, session.prefix)
        guard = CursorGuard("Coinbase", "fills")
        cursor = ""
        while True:
            params = {"limit": str(PAGE_SIZE)}
            if cursor:
                params["cursor"] = cursor
            body = await session.call("GET", ENDPOINT, auth=auth, decode=decode, params=params)
            if not isinstance(body, dict):
                raise shape_error("Coinbase", "fills")
            fills = records(body.get("fills"), "Coinbase", "fills")
            yield [tx for fill in fills for tx in fill_transactions(fill)]
            cursor = str(body.get("cursor") or "")
            if not fills or not cursor:
                return
            guard.check(cursor)
