"""Bitfinex history: the ledgers, `POST /v2/auth/r/ledgers/hist` (reference/exchanges.md §9).

Pagination by time: `end` (ms, inclusive) and `limit` (≤ 2500), newest first. A full page moves `end` to its
oldest entry's time; entries of that boundary millisecond come again and are skipped by id, so none is lost or
repeated. A full page of one millisecond cannot be paged past and stops the sync with an error.

A ledger row is `[ID, CURRENCY, null, MTS, null, AMOUNT, BALANCE, null, DESCRIPTION]`; ids are Bitfinex's own.
Calls are one after the other: the nonce must increase (§0.2).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Final

from bot.exchanges._base import UnexpectedResponse
from bot.exchanges._history import HistoryReader, Page, decimal, from_ms, shape_error
from bot.exchanges._http import Session
from bot.exchanges.bitfinex import BitfinexAuth, BitfinexClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["BitfinexHistory", "ledger_transaction", "ENDPOINT", "PAGE_SIZE"]

ENDPOINT: Final = "/v2/auth/r/ledgers/hist"
PAGE_SIZE: Final = 2500


def _kind(description: str) -> str:
    text = description.lower()
    if "exchange" in text or "trading fee" in text:
        return "trade"
    if "deposit" in text or "withdrawal" in text or "transfer" in text:
        return "transfer"
    if "margin" in text or "funding" in text or "interest" in text:
        return "margin"
    return "other"


def ledger_transaction(row: Any) -> SourceTransaction:
    """One ledger row as a source transaction."""
    if not isinstance(row, list) or len(row) < 6 or row[0] is None or not row[1]:
        raise shape_error("Bitfinex", "a ledger entry")
    description = str(row[8]) if len(row) > 8 and row[8] is not None else ""
    return SourceTransaction(
        exchange_tx_id=str(row[0]),
        kind=_kind(description),
        asset=str(row[1]),
        amount=decimal(row[5], "Bitfinex"),
        occurred_at=from_ms(row[3]),
        raw={"row": list(row)},
    )


class BitfinexHistory(HistoryReader):
    exchange = "bitfinex"
    client_class = BitfinexClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = BitfinexAuth(credentials.api_key, credentials.api_secret, session.prefix)
        end = int(time.time() * 1000)
        seen: set[str] = set()
        while True:
            rows = await session.call(
                "POST", ENDPOINT, auth=auth, decode=decode, json_data={"end": end, "limit": PAGE_SIZE}
            )
            if not isinstance(rows, list):
                raise shape_error("Bitfinex", "the ledgers")
            fresh = [r for r in rows if isinstance(r, list) and r and str(r[0]) not in seen]
            yield [ledger_transaction(r) for r in fresh]
            if len(rows) < PAGE_SIZE:
                break
            boundary = min(int(r[3]) for r in rows)
            if boundary == end and not fresh:
                raise UnexpectedResponse(
                    "Bitfinex has more ledger entries in one millisecond than a page holds; the sync stopped"
                )
            seen = {str(r[0]) for r in rows if int(r[3]) == boundary}
            end = boundary
