"""Gate history: the spot account book, `GET /api/v4/spot/account_book` (reference/exchanges.md §11).

Pagination: `page` (from 1) and `limit` (≤ 1000), newest first; a page shorter than `limit` is the last one.
Each entry is one balance change of one currency (`change`, signed) with Gate's own stable `id`; its `type`
says what caused it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from bot.exchanges._history import HistoryReader, Page, decimal, from_ms, records, shape_error
from bot.exchanges._http import Session
from bot.exchanges.gate_io import GateAuth, GateClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["GateHistory", "book_transaction", "ENDPOINT", "PAGE_SIZE"]

ENDPOINT: Final = "/api/v4/spot/account_book"
PAGE_SIZE: Final = 1000

_KINDS: Final[dict[str, str]] = {
    "deposit": "transfer",
    "withdraw": "transfer",
    "withdrawal": "transfer",
    "new_order": "trade",
    "order_fill": "trade",
    "trade": "trade",
    "fee": "trade",
    "referral_fee": "income",
    "point_fee": "trade",
}


def book_transaction(entry: Mapping[str, Any]) -> SourceTransaction:
    """One account-book entry as a source transaction."""
    entry_id, currency = entry.get("id"), entry.get("currency")
    if not entry_id or not currency:
        raise shape_error("Gate.io", "an account-book entry")
    return SourceTransaction(
        exchange_tx_id=str(entry_id),
        kind=_KINDS.get(str(entry.get("type", "")), "other"),
        asset=str(currency),
        amount=decimal(entry.get("change"), "Gate.io"),
        occurred_at=from_ms(entry.get("time")),
        raw=dict(entry),
    )


class GateHistory(HistoryReader):
    exchange = "gate_io"
    client_class = GateClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = GateAuth(credentials.api_key, credentials.api_secret, session.prefix)
        page = 1
        while True:
            params = {"page": str(page), "limit": str(PAGE_SIZE)}
            entries = records(
                await session.call("GET", ENDPOINT, auth=auth, decode=decode, params=params),
                "Gate.io",
                ENDPOINT,
            )
            yield [book_transaction(entry) for entry in entries]
            if len(entries) < PAGE_SIZE:
                break
            page += 1
