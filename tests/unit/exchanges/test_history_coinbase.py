"""Coinbase history: fills followed by `cursor` to the empty cursor; a fill is two movements; an HTTP 429 is
retried after `Retry-After`; a 401 mid-sync stops it; a cursor that repeats stops it too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.exchanges._base import UnexpectedResponse
from bot.exchanges.coinbase_history import CoinbaseHistory
from bot.types.history import KeyRejected
from tests.unit.exchanges.history_fakes import FakeExchange, FakeSleep, flat, ok, read_all, reader


def fill(n: int, side: str = "BUY") -> dict[str, Any]:
    return {
        "entry_id": f"entry-{n}",
        "trade_id": f"trade-{n}",
        "product_id": "BTC-USD",
        "trade_time": "2024-03-01T12:00:00.123456Z",
        "price": "50000.00",
        "size": "0.01",
        "commission": "3.00",
        "side": side,
        "size_in_quote": False,
    }


def pages_of(*pages: list[dict[str, Any]]) -> FakeExchange:
    def coinbase_fills(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        index = int(params.get("cursor", "0"))
        cursor = str(index + 1) if index + 1 < len(pages) else ""
        return ok({"fills": pages[index], "cursor": cursor})

    return FakeExchange(coinbase_fills)


async def test_fills_follow_the_cursor_until_it_is_empty() -> None:
    exchange = pages_of([fill(3), fill(2)], [fill(1)], [fill(0)])
    txs = flat(await read_all(reader(CoinbaseHistory, exchange), "coinbase"))

    assert [p.get("cursor") for p in exchange.params] == [None, "1", "2"]
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in exchange.requests)
    assert len(txs) == 8
    assert {tx.exchange_tx_id for tx in txs} == {f"entry-{n}:{a}" for n in range(4) for a in ("BTC", "USD")}


async def test_a_fill_is_two_movements_with_the_commission_on_the_quote_leg() -> None:
    txs = flat(await read_all(reader(CoinbaseHistory, pages_of([fill(0, "SELL")])), "coinbase"))
    btc, usd = sorted(txs, key=lambda tx: tx.asset)
    assert (btc.asset, btc.amount, btc.fee, btc.kind) == ("BTC", Decimal("-0.01"), None, "trade")
    assert (usd.asset, usd.amount, usd.fee, usd.fee_asset) == (
        "USD",
        Decimal("500.0000"),
        Decimal("3.00"),
        "USD",
    )
    assert btc.occurred_at.isoformat() == "2024-03-01T12:00:00.123456+00:00"


async def test_http_429_is_retried_after_retry_after() -> None:
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "3"}), ok({"fills": [fill(0)], "cursor": ""})]
    )
    sleep = FakeSleep()
    exchange = FakeExchange(lambda request, params: next(answers))
    txs = flat(await read_all(reader(CoinbaseHistory, exchange, sleep), "coinbase"))
    assert len(txs) == 2 and sleep.delays == [3.0] and len(exchange.requests) == 2


async def test_a_401_mid_sync_stops_it_without_a_retry() -> None:
    def unauthorized_on_page_two(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        if "cursor" in params:
            return httpx.Response(401, text="Unauthorized")
        return ok({"fills": [fill(1)], "cursor": "1"})

    exchange = FakeExchange(unauthorized_on_page_two)
    with pytest.raises(KeyRejected) as caught:
        await read_all(reader(CoinbaseHistory, exchange), "coinbase")
    assert caught.value.raw_code == "401" and len(exchange.requests) == 2


async def test_a_cursor_that_comes_back_stops_the_sync() -> None:
    exchange = FakeExchange(lambda request, params: ok({"fills": [fill(0)], "cursor": "same"}))
    with pytest.raises(UnexpectedResponse):
        await read_all(reader(CoinbaseHistory, exchange), "coinbase")
    assert len(exchange.requests) == 2
