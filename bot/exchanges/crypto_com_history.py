"""Crypto.com history: the account journal, `private/get-transactions` (reference/exchanges.md §10).

Pagination by time: a request covers `start_time`..`end_time` (ms; Crypto.com answers a bounded window, so
KeyMedic asks 7 days at a time, up to 2 years back) and returns at most `limit` (100) entries, newest first.
A full page moves `end_time` to its oldest entry's time; the entries at that boundary millisecond are asked
again and skipped by `journal_id`, so none is lost or repeated. A full page of one millisecond cannot be paged
past and stops the sync with an error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from bot.exchanges._base import UnexpectedResponse
from bot.exchanges._history import HistoryReader, Page, decimal, from_ms, records, shape_error
from bot.exchanges._http import Session
from bot.exchanges.crypto_com import API_PREFIX, CryptoComAuth, CryptoComClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["CryptoComHistory", "journal_transaction", "METHOD", "WINDOW_MS", "PAGE_SIZE"]

METHOD: Final = "private/get-transactions"
PAGE_SIZE: Final = 100
WINDOW_MS: Final = 7 * 86_400_000
HISTORY_DAYS: Final = 730

_KINDS: Final[dict[str, str]] = {
    "TRADING": "trade",
    "TRADE_FEE": "trade",
    "DEPOSIT": "transfer",
    "WITHDRAW": "transfer",
    "TRANSFER": "transfer",
    "FUNDING": "margin",
    "REALIZED_PNL": "margin",
}


def journal_transaction(entry: Mapping[str, Any]) -> SourceTransaction:
    """One journal entry as a source transaction."""
    journal_id = entry.get("journal_id")
    asset = entry.get("instrument_name") or entry.get("currency")
    if not journal_id or not asset:
        raise shape_error("Crypto.com", "a journal entry")
    return SourceTransaction(
        exchange_tx_id=str(journal_id),
        kind=_KINDS.get(str(entry.get("journal_type", "")), "other"),
        asset=str(asset),
        amount=decimal(entry.get("transaction_qty"), "Crypto.com"),
        occurred_at=from_ms(entry.get("event_timestamp_ms")),
        raw=dict(entry),
    )


class CryptoComHistory(HistoryReader):
    exchange = "crypto_com"
    client_class = CryptoComClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = CryptoComAuth(credentials.api_key, credentials.api_secret, session.prefix)
        window_end = int(time.time() * 1000)
        oldest = window_end - HISTORY_DAYS * 86_400_000
        while window_end > oldest:
            start = max(oldest, window_end - WINDOW_MS)
            end, seen = window_end, set()
            while True:
                params = {"start_time": start, "end_time": end, "limit": PAGE_SIZE}
                result = await session.call(
                    "POST", API_PREFIX + METHOD, auth=auth, decode=decode, json_data=params
                )
                entries = records(result.get("data") or [], "Crypto.com", METHOD)
                fresh = [e for e in entries if str(e.get("journal_id")) not in seen]
                yield [journal_transaction(e) for e in fresh]
                if len(entries) < PAGE_SIZE:
                    break
                boundary = min(int(str(e.get("event_timestamp_ms"))) for e in entries)
                if boundary == end and not fresh:
                    raise UnexpectedResponse(
                        "Crypto.com has more entries in one millisecond than a page holds; the sync stopped"
                    )
                seen = {
                    str(e.get("journal_id"))
                    for e in entries
                    if int(str(e.get("event_timestamp_ms"))) == boundary
                }
                end = boundary
            window_end = start - 1
