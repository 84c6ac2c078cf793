"""Bitstamp history: `POST /api/v2/user_transactions/` (reference/exchanges.md §8 "History").

Pagination: `offset` and `limit` (at most 1000) in the form body, `sort=desc` (newest first). KeyMedic reads
from offset 0 until a page is shorter than the limit. Bitstamp caps `offset` at 200,000 (its documented
maximum); a longer history needs `since_id`, which KeyMedic does not use yet (docs/store.md "History
adapters").

A row carries one field per currency it moved (`btc`, `usd`, …) next to the pair's rate (`btc_usd`), so a
trade becomes two movements and a deposit one: `<id>:<ASSET>` each, with Bitstamp's stable `id`. The fee is
in the quote currency of the pair for a trade, in the moved currency otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from bot.exchanges._history import (
    HistoryReader,
    Page,
    decimal,
    fee_or_none,
    from_utc_text,
    records,
    shape_error,
)
from bot.exchanges._http import Session
from bot.exchanges.bitstamp import BitstampAuth, BitstampClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["BitstampHistory", "user_transactions"]

PAGE_SIZE: Final = 1000

# Bitstamp's transaction `type` codes (API v2 "User transactions").
_KINDS: Final[dict[str, str]] = {
    "0": "deposit",
    "1": "withdrawal",
    "2": "trade",
    "14": "transfer",  # sub account transfer
    "25": "staking",  # credited with staked assets
    "26": "staking",  # sent assets to staking
    "27": "reward",  # staking reward
    "32": "reward",  # referral reward
    "35": "transfer",  # inter account transfer
}
_NOT_CURRENCIES: Final = frozenset({"id", "datetime", "type", "fee", "order_id", "tid"})


def user_transactions(row: Mapping[str, Any]) -> list[SourceTransaction]:
    """One user transaction as one movement per currency it changed."""
    row_id = row.get("id")
    if row_id is None:
        raise shape_error("Bitstamp", "a user transaction")
    pair = next((k for k in row if "_" in k and k.replace("_", "").isalpha()), None)
    quote = pair.split("_", 1)[1].upper() if pair else None
    moved = [
        (key.upper(), decimal(value, "Bitstamp"))
        for key, value in row.items()
        if key not in _NOT_CURRENCIES and key.isalpha() and value not in (None, "")
    ]
    moved = [(asset, amount) for asset, amount in moved if amount]
    fee = fee_or_none(row.get("fee"), "Bitstamp")
    fee_asset = quote if quote and any(a == quote for a, _ in moved) else (moved[0][0] if moved else None)
    kind = _KINDS.get(str(row.get("type", "")), "other")
    occurred_at = from_utc_text(row.get("datetime"))
    return [
        SourceTransaction(
            exchange_tx_id=f"{row_id}:{asset}",
            kind=kind,
            asset=asset,
            amount=amount,
            occurred_at=occurred_at,
            fee=fee if asset == fee_asset else None,
            fee_asset=fee_asset if asset == fee_asset and fee is not None else None,
            raw=dict(row),
        )
        for asset, amount in moved
    ]


class BitstampHistory(HistoryReader):
    exchange = "bitstamp"
    client_class = BitstampClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = BitstampAuth(credentials.api_key, credentials.api_secret, session.prefix)
        offset = 0
        while True:
            rows = records(
                await session.call(
                    "POST",
                    "/api/v2/user_transactions/",
                    auth=auth,
                    decode=decode,
                    data={"offset": str(offset), "limit": str(PAGE_SIZE), "sort": "desc"},
                ),
                "Bitstamp",
                "user_transactions",
            )
            yield [tx for row in rows for tx in user_transactions(row)]
            if len(rows) < PAGE_SIZE:
                return
            offset += len(rows)
