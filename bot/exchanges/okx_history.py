"""OKX history: account bills, `GET /api/v5/account/bills` (last 7 days) and
`GET /api/v5/account/bills-archive` (last 3 months) (reference/exchanges.md §6 "History").

Pagination: newest first, at most 100 a page (`limit`); `after=<billId>` asks for the bills older than that
one. KeyMedic reads the 7-day list first, then continues in the archive *after the oldest bill it already
has*, so the two lists join without overlap. A page shorter than `limit` is the last one.

Each bill is one balance change of one currency (`balChg`, signed) with a stable `billId`: the exchange
transaction id. OKX's `fee` is negative when charged and positive for a rebate; KeyMedic stores its size.
History older than 3 months is only available through OKX's asynchronous archive download, which KeyMedic
does not read yet (docs/store.md "History adapters").
"""

from __future__ import annotations

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
from bot.exchanges.okx import OkxAuth, OkxClient, decode
from bot.types.credentials import Credentials
from bot.types.history import HistoryError, SourceTransaction

__all__ = ["OkxHistory", "bill_transaction", "ENDPOINTS"]

PAGE_SIZE: Final = 100
ENDPOINTS: Final = ("/api/v5/account/bills", "/api/v5/account/bills-archive")

# OKX bill `type` (v5 "Get bills details") -> KeyMedic's kinds.
_KINDS: Final[dict[str, str]] = {
    "1": "transfer",
    "2": "trade",
    "3": "trade",  # delivery
    "4": "trade",  # auto token conversion
    "5": "margin",  # liquidation
    "6": "transfer",  # margin transfer
    "7": "margin",  # interest deduction
    "8": "margin",  # funding fee
    "11": "trade",  # system token conversion
    "14": "trade",  # block trade
    "27": "trade",  # convert
    "28": "trade",  # easy convert
    "30": "trade",  # simple trade
}


def bill_transaction(bill: Mapping[str, Any]) -> SourceTransaction:
    """One bill as a source transaction."""
    bill_id, currency = bill.get("billId"), bill.get("ccy")
    if not bill_id or not currency:
        raise shape_error("OKX", "a bill")
    fee = fee_or_none(bill.get("fee"), "OKX")
    return SourceTransaction(
        exchange_tx_id=str(bill_id),
        kind=_KINDS.get(str(bill.get("type", "")), "other"),
        asset=str(currency),
        amount=decimal(bill.get("balChg"), "OKX"),
        occurred_at=from_ms(bill.get("ts")),
        fee=fee,
        fee_asset=str(currency) if fee is not None else None,
        raw=dict(bill),
    )


class OkxHistory(HistoryReader):
    exchange = "okx"
    client_class = OkxClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        if credentials.passphrase is None:
            raise HistoryError("an OKX key needs its passphrase, and this wallet's credential has none")
        auth = OkxAuth(credentials.api_key, credentials.api_secret, credentials.passphrase, session.prefix)
        oldest: str | None = None
        for endpoint in ENDPOINTS:
            guard = CursorGuard("OKX", endpoint)
            while True:
                params = {"limit": str(PAGE_SIZE)}
                if oldest is not None:
                    params["after"] = oldest
                    guard.check(oldest)
                bills = records(
                    await session.call("GET", endpoint, auth=auth, decode=decode, params=params),
                    "OKX",
                    endpoint,
                )
                yield [bill_transaction(bill) for bill in bills]
                if bills:
                    oldest = _oldest(bills)
                if len(bills) < PAGE_SIZE:
                    break


def _oldest(bills: list[dict[str, Any]]) -> str:
    # Bill ids grow with time; the smallest on the page is where the next page starts.
    try:
        return str(min(int(str(bill["billId"])) for bill in bills))
    except ValueError:
        raise shape_error("OKX", "a bill id") from None
