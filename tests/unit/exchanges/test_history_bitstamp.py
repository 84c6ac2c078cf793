"""Bitstamp history: user_transactions paged by offset/limit until a short page; one movement per currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

import bot.exchanges.bitstamp_history as bitstamp_history
from bot.exchanges.bitstamp_history import BitstampHistory, user_transactions
from bot.types.history import KeyRejected
from tests.unit.exchanges.history_fakes import FakeExchange, flat, ok, read_all, reader

TRADE = {
    "id": 285641832,
    "datetime": "2023-07-04 09:54:44.178000",
    "type": "2",
    "fee": "2.50",
    "btc": "0.05000000",
    "usd": "-1250.00",
    "eur": "0.0",
    "btc_usd": "25000.00",
    "order_id": 1631460612517888,
}


def deposit(n: int) -> dict[str, Any]:
    return {"id": n, "datetime": "2023-07-01 00:00:00", "type": "0", "fee": "0.00", "usd": "100.00"}


async def test_pages_follow_offset_until_a_short_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bitstamp_history, "PAGE_SIZE", 2)
    rows = [deposit(n) for n in range(5, 0, -1)]

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        offset, limit = int(params["offset"]), int(params["limit"])
        return ok(rows[offset : offset + limit])

    exchange = FakeExchange(answer)
    txs = flat(await read_all(reader(BitstampHistory, exchange), "bitstamp"))
    assert [(p["offset"], p["limit"], p["sort"]) for p in exchange.params] == [
        ("0", "2", "desc"),
        ("2", "2", "desc"),
        ("4", "2", "desc"),
    ]
    assert [tx.exchange_tx_id for tx in txs] == [f"{n}:USD" for n in range(5, 0, -1)]


def test_a_trade_row_is_two_movements_with_the_fee_in_the_quote_currency() -> None:
    btc, usd = user_transactions(TRADE)
    assert (btc.exchange_tx_id, btc.amount, btc.fee, btc.kind) == (
        "285641832:BTC",
        Decimal("0.05"),
        None,
        "trade",
    )
    assert (usd.exchange_tx_id, usd.amount, usd.fee, usd.fee_asset) == (
        "285641832:USD",
        Decimal("-1250.00"),
        Decimal("2.50"),
        "USD",
    )
    assert btc.occurred_at.isoformat() == "2023-07-04T09:54:44.178000+00:00"


async def test_an_inactive_key_stops_the_sync() -> None:
    exchange = FakeExchange(
        lambda r, p: ok({"status": "error", "reason": "API key not found", "code": "API0002"}, 403)
    )
    with pytest.raises(KeyRejected) as caught:
        await read_all(reader(BitstampHistory, exchange), "bitstamp")
    assert caught.value.raw_code == "API0002" and len(exchange.requests) == 1
