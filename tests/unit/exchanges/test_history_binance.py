"""Binance history: deposits and withdrawals in 90-day windows paged with offset; trades per symbol paged
with `fromId`, unknown symbols (-1121) skipped; Binance.US starts later; a -2015 mid-sync stops it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

import bot.exchanges.binance_history as binance_history
from bot.exchanges.binance_history import (
    WINDOW_MS,
    BinanceHistory,
    BinanceUsHistory,
    candidate_symbols,
    windows,
)
from bot.types.history import KeyRejected
from tests.unit.exchanges.history_fakes import FakeExchange, flat, ok, read_all, reader

NOW = datetime(2018, 3, 1, tzinfo=timezone.utc).timestamp()  # a little over two 90-day windows after launch


def trade(trade_id: int) -> dict[str, Any]:
    return {
        "id": trade_id,
        "qty": "0.5",
        "quoteQty": "10000",
        "commission": "0.0005",
        "commissionAsset": "BTC",
        "time": 1_510_000_000_000,
        "isBuyer": True,
    }


def binance(trades: dict[str, list[int]], page: int) -> FakeExchange:
    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        path = request.url.path
        if path.endswith("/deposit/hisrec"):
            first = int(params["startTime"]) == int(BinanceHistory.history_start.timestamp() * 1000)
            rows = [
                {"id": "d1", "coin": "BTC", "amount": "1", "status": 1, "insertTime": 1_500_000_000_000},
                {"id": "d2", "coin": "ETH", "amount": "3", "status": 0, "insertTime": 1_500_000_000_000},
            ]
            return ok(rows if first and params["offset"] == "0" else [])
        if path.endswith("/withdraw/history"):
            return ok([])
        if path == "/api/v3/account":
            return ok({"balances": [{"asset": "BTC", "free": "0", "locked": "0"}, {"asset": "USDT"}]})
        symbol = params["symbol"]
        if symbol not in trades:
            return ok({"code": -1121, "msg": "Invalid symbol."}, 400)
        ids = [i for i in trades[symbol] if i >= int(params["fromId"])][:page]
        return ok([trade(i) for i in ids])

    return FakeExchange(answer)


def test_windows_cover_the_range_without_gaps_or_overlaps() -> None:
    spans = list(windows(0, 2 * WINDOW_MS + 5))
    assert spans == [(0, WINDOW_MS - 1), (WINDOW_MS, 2 * WINDOW_MS - 1), (2 * WINDOW_MS, 2 * WINDOW_MS + 5)]


def test_symbols_are_pairs_of_seen_assets_with_a_quote_asset() -> None:
    assert [s for s, _, _ in candidate_symbols({"BTC", "ETH", "USDT"})] == [
        "BTCUSDT",
        "BTCETH",
        "ETHUSDT",
        "ETHBTC",
        "USDTBTC",
        "USDTETH",
    ]


async def test_windows_offsets_symbols_and_from_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binance_history, "PAGE_SIZE", 2)
    exchange = binance({"BTCUSDT": [5, 6, 9]}, page=2)
    txs = flat(await read_all(reader(BinanceHistory, exchange, clock=lambda: NOW), "binance"))

    deposit_windows = [p for path, p in exchange.calls() if path.endswith("hisrec")]
    assert [(p["offset"], p["limit"]) for p in deposit_windows] == [
        ("0", "2"),
        ("2", "2"),
        ("0", "2"),
        ("0", "2"),
    ]
    assert all(int(p["endTime"]) - int(p["startTime"]) < WINDOW_MS for p in deposit_windows)
    trade_calls = [(p["symbol"], p["fromId"]) for path, p in exchange.calls() if "symbol" in p]
    # ETH was seen in a (still pending) deposit, so its pairs are tried too; the unknown ones answer -1121.
    assert trade_calls == [
        ("BTCUSDT", "0"),
        ("BTCUSDT", "7"),
        ("BTCETH", "0"),
        ("ETHUSDT", "0"),
        ("ETHBTC", "0"),
        ("USDTBTC", "0"),
        ("USDTETH", "0"),
    ]
    ids = sorted(tx.exchange_tx_id for tx in txs)
    assert ids == ["deposit:d1"] + sorted(
        f"trade:BTCUSDT:{n}:{a}" for n in (5, 6, 9) for a in ("BTC", "USDT")
    )
    btc = next(tx for tx in txs if tx.exchange_tx_id == "trade:BTCUSDT:5:BTC")
    assert (btc.amount, btc.fee, btc.fee_asset) == (Decimal("0.5"), Decimal("0.0005"), "BTC")
    usdt = next(tx for tx in txs if tx.exchange_tx_id == "trade:BTCUSDT:5:USDT")
    assert (usdt.amount, usdt.fee) == (Decimal("-10000"), None)
    assert all(r.headers["X-MBX-APIKEY"] and "signature=" in str(r.url) for r in exchange.requests)


async def test_binance_us_starts_at_its_own_launch() -> None:
    exchange = binance({}, page=1000)
    await read_all(
        reader(BinanceUsHistory, exchange, clock=lambda: datetime(2019, 10, 1).timestamp()), "binance_us"
    )
    first = exchange.params[0]
    assert int(first["startTime"]) == int(datetime(2019, 9, 1, tzinfo=timezone.utc).timestamp() * 1000)


async def test_2015_mid_sync_stops_it() -> None:
    def rejected_on_withdrawals(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        if request.url.path.endswith("/withdraw/history"):
            return ok({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, 401)
        return ok([])

    exchange = FakeExchange(rejected_on_withdrawals)
    with pytest.raises(KeyRejected) as caught:
        await read_all(reader(BinanceHistory, exchange, clock=lambda: NOW), "binance")
    assert caught.value.raw_code == "-2015"
    assert sum(r.url.path.endswith("/withdraw/history") for r in exchange.requests) == 1
