"""Bybit history: the Unified account's transaction log, `GET /v5/account/transaction-log`
(docs/exchanges/bybit.md "History").

Pagination: Bybit answers at most 7 days per request (`startTime`/`endTime`, ms) and up to 2 years back, and
within a window pages with `nextPageCursor` (`limit` ≤ 50). KeyMedic walks the windows from now backwards and
follows each window's cursor to its end; an empty cursor ends the window.

Each log row is one balance change of one currency (`change`, signed; `fee` positive when paid) with Bybit's
own stable `id`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from bot.exchanges._history import (
    CursorGuard,
    HistoryReader,
    Page,
    decimal,
    fee_or_none,
    from_ms,
    records,
    shape_error,
)
from bot.exchanges._http import Session
from bot.exchanges.bybit import BybitAuth, BybitClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["BybitHistory", "log_transaction", "ENDPOINT", "WINDOW_MS", "HISTORY_DAYS"]

ENDPOINT: Final = "/v5/account/transaction-log"
PAGE_SIZE: Final = 50
WINDOW_MS: Final = 7 * 86_400_000
HISTORY_DAYS: Final = 730

_KINDS: Final[dict[str, str]] = {
    "TRANSFER_IN": "transfer",
    "TRANSFER_OUT": "transfer",
    "TRADE": "trade",
    "CURRENCY_BUY": "trade",
    "CURRENCY_SELL": "trade",
    "SETTLEMENT": "margin",
    "DELIVERY": "margin",
    "LIQUIDATION": "margin",
    "INTEREST": "margin",
    "BONUS": "income",
    "FEE_REFUND": "income",
}


def log_transaction(row: Mapping[str, Any]) -> SourceTransaction:
    """One transaction-log row as a source transaction."""
    row_id, currency = row.get("id"), row.get("currency")
    if not row_id or not currency:
        raise shape_error("Bybit", "a transaction-log row")
    fee = fee_or_none(row.get("fee"), "Bybit")
    return SourceTransaction(
        exchange_tx_id=str(row_id),
        kind=_KINDS.get(str(row.get("type", "")), "other"),
        asset=str(currency),
        amount=decimal(row.get("change"), "Bybit"),
        occurred_at=from_ms(row.get("transactionTime")),
        fee=fee,
        fee_asset=str(currency) if fee is not None else None,
        raw=dict(row),
    )


class BybitHistory(HistoryReader):
    exchange = "bybit"
    client_class = BybitClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = BybitAuth(credentials.api_key, credentials.api_secret)
        end = int(time.time() * 1000)
        oldest = end - HISTORY_DAYS * 86_400_000
        while end > oldest:
            start = max(oldest, end - WINDOW_MS)
            guard = CursorGuard("Bybit", ENDPOINT)
            cursor = ""
            while True:
                params = {
                    "accountType": "UNIFIED",
                    "startTime": str(start),
                    "endTime": str(end),
                    "limit": str(PAGE_SIZE),
                }
                if cursor:
                    guard.check(cursor)
                    params["cursor"] = cursor
                result = await session.call("GET", ENDPOINT, auth=auth, decode=decode, params=params)
                rows = records(result.get("list") or [], "Bybit", ENDPOINT)
                yield [log_transaction(row) for row in rows]
                cursor = str(result.get("nextPageCursor") or "")
                if not cursor or not rows:
                    break
            # Windows share no millisecond: the next one ends just before this one started.
            end = start - 1
