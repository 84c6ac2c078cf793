"""KuCoin history: the account ledger, `GET /api/v1/accounts/ledgers` (reference/exchanges.md §4 "History").

Pagination: `currentPage` (from 1) and `pageSize` (at most 500); each page says `totalNum` and `totalPage`.
KeyMedic reads page after page until `currentPage` reaches `totalPage` or a page is empty. KuCoin's time
window on this endpoint (commonly quoted as 24-hour windows over the last year) is unconfirmed in the
reference, so KeyMedic sends no `startAt`/`endAt` and reads what the pages give (docs/store.md "History
adapters").

Each item is one movement of one currency with a stable `id` (a 24-hex-digit ObjectId): the exchange
transaction id. `amount` is unsigned; `direction` `out` makes it negative.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from bot.exchanges._history import (
    HistoryReader,
    Page,
    decimal,
    fee_or_none,
    from_ms,
    records,
    shape_error,
)
from bot.exchanges._http import Session
from bot.exchanges.kucoin import DEFAULT_KEY_VERSION, KucoinAuth, KucoinClient, decode
from bot.types.credentials import Credentials
from bot.types.history import HistoryError, SourceTransaction

__all__ = ["KucoinHistory", "ledger_transaction"]

PAGE_SIZE: Final = 500

# bizType words (KuCoin's names vary by account type and era) -> KeyMedic's kinds, first match wins.
_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("deposit", "deposit"),
    ("withdraw", "withdrawal"),
    ("exchange", "trade"),
    ("trade", "trade"),
    ("convert", "trade"),
    ("transfer", "transfer"),
    ("staking", "staking"),
    ("reward", "reward"),
    ("bonus", "reward"),
    ("airdrop", "reward"),
)


def _kind(biz_type: str) -> str:
    lowered = biz_type.lower()
    return next((kind for word, kind in _KINDS if word in lowered), "other")


def ledger_transaction(item: Mapping[str, Any]) -> SourceTransaction:
    """One ledger item as a source transaction."""
    item_id, currency = item.get("id"), item.get("currency")
    if not item_id or not currency:
        raise shape_error("KuCoin", "a ledger item")
    amount = abs(decimal(item.get("amount"), "KuCoin"))
    if item.get("direction") == "out":
        amount = -amount
    fee = fee_or_none(item.get("fee"), "KuCoin")
    return SourceTransaction(
        exchange_tx_id=str(item_id),
        kind=_kind(str(item.get("bizType", ""))),
        asset=str(currency),
        amount=amount,
        occurred_at=from_ms(item.get("createdAt")),
        fee=fee,
        fee_asset=str(currency) if fee is not None else None,
        raw=dict(item),
    )


class KucoinHistory(HistoryReader):
    exchange = "kucoin"
    client_class = KucoinClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        if credentials.passphrase is None:
            raise HistoryError("a KuCoin key needs its passphrase, and this wallet's credential has none")
        version = credentials.key_version or DEFAULT_KEY_VERSION
        auth = KucoinAuth(
            credentials.api_key, credentials.api_secret, credentials.passphrase, version, session.prefix
        )
        page_number = 1
        while True:
            page = await session.call(
                "GET",
                "/api/v1/accounts/ledgers",
                auth=auth,
                decode=decode,
                params={"currentPage": str(page_number), "pageSize": str(PAGE_SIZE)},
            )
            if not isinstance(page, dict):
                raise shape_error("KuCoin", "the ledger")
            items = records(page.get("items"), "KuCoin", "the ledger")
            yield [ledger_transaction(item) for item in items]
            total_pages = page.get("totalPage")
            if not items or not isinstance(total_pages, int) or page_number >= total_pages:
                return
            page_number += 1
