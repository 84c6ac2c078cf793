"""Gemini history: trades then transfers, paged by `timestamp` from 0; records that share the boundary
millisecond are neither lost nor repeated; nonces strictly increase; a short page is the last one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

import bot.exchanges.gemini_history as gemini_history
from bot.exchanges._base import UnexpectedResponse
from bot.exchanges.gemini_history import GeminiHistory, split_symbol
from tests.unit.exchanges.history_fakes import FakeExchange, flat, ok, read_all, reader


def trade(tid: int, ms: int) -> dict[str, Any]:
    return {
        "tid": tid,
        "timestampms": ms,
        "symbol": "ETHUSD",
        "type": "Sell",
        "amount": "2",
        "price": "1500.00",
        "fee_currency": "USD",
        "fee_amount": "1.20",
    }


def transfer(eid: int, ms: int, status: str = "Advanced") -> dict[str, Any]:
    kind = "Withdrawal" if eid % 2 else "Deposit"
    return {"type": kind, "status": status, "eid": eid, "timestampms": ms, "currency": "BTC", "amount": "0.1"}


def gemini(trades: list[dict[str, Any]], transfers: list[dict[str, Any]]) -> FakeExchange:
    """Records on or after `timestamp`, oldest first up to the limit, answered newest first."""

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        rows, limit = (
            (trades, params["limit_trades"])
            if request.url.path == "/v1/mytrades"
            else (transfers, params["limit_transfers"])
        )
        chosen = [r for r in rows if r["timestampms"] >= params["timestamp"]][:limit]
        return ok(sorted(chosen, key=lambda r: -r["timestampms"]))

    return FakeExchange(answer)


async def test_pages_move_by_timestamp_and_keep_the_boundary_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gemini_history, "TRADES_LIMIT", 3)
    monkeypatch.setattr(gemini_history, "TRANSFERS_LIMIT", 2)
    # Trades 3 and 4 share a millisecond across the first page's edge.
    trades = [trade(1, 1000), trade(2, 2000), trade(3, 3000), trade(4, 3000), trade(5, 4000)]
    transfers = [transfer(10, 500), transfer(11, 600), transfer(12, 700, status="Pending")]
    exchange = gemini(trades, transfers)
    txs = flat(await read_all(reader(GeminiHistory, exchange), "gemini"))

    assert [(path, p["timestamp"]) for path, p in exchange.calls()] == [
        ("/v1/mytrades", 0),
        ("/v1/mytrades", 3000),
        ("/v1/mytrades", 4000),
        ("/v1/transfers", 0),
        ("/v1/transfers", 600),
        ("/v1/transfers", 700),
    ]
    trade_ids = sorted({tx.exchange_tx_id.rsplit(":", 1)[0] for tx in txs if tx.kind == "trade"})
    assert trade_ids == [f"trade:{n}" for n in range(1, 6)]
    assert len([tx for tx in txs if tx.kind == "trade"]) == 10, "each trade once, as two legs"
    assert sorted(tx.exchange_tx_id for tx in txs if tx.kind != "trade") == ["transfer:10", "transfer:11"]
    nonces = [p["nonce"] for p in exchange.params]
    assert nonces == sorted(set(nonces))


async def test_a_trade_and_a_withdrawal_become_signed_movements() -> None:
    exchange = gemini([trade(7, 1000)], [transfer(11, 1000)])
    txs = {tx.exchange_tx_id: tx for tx in flat(await read_all(reader(GeminiHistory, exchange), "gemini"))}
    assert txs["trade:7:ETH"].amount == Decimal("-2") and txs["trade:7:ETH"].fee is None
    assert txs["trade:7:USD"].amount == Decimal("3000.00") and txs["trade:7:USD"].fee == Decimal("1.20")
    assert txs["transfer:11"].kind == "withdrawal" and txs["transfer:11"].amount == Decimal("-0.1")


async def test_a_full_page_in_one_millisecond_stops_the_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemini_history, "TRADES_LIMIT", 2)
    exchange = gemini([trade(1, 1000), trade(2, 1000), trade(3, 1000)], [])
    with pytest.raises(UnexpectedResponse):
        await read_all(reader(GeminiHistory, exchange), "gemini")


def test_symbols_split_into_base_and_quote() -> None:
    assert [split_symbol(s) for s in ("btcusd", "ETHBTC", "BTCGUSD", "SOLUSDT")] == [
        ("BTC", "USD"),
        ("ETH", "BTC"),
        ("BTC", "GUSD"),
        ("SOL", "USDT"),
    ]
