"""History adapters of Bybit, Gate, Crypto.com and Bitfinex follow each exchange's own pagination to the end:
Bybit's cursor inside 7-day windows, Gate's pages, and the time cursors of Crypto.com and Bitfinex, which
neither lose nor repeat the entries that share the boundary millisecond."""

from __future__ import annotations

from typing import Any

import httpx

from bot.exchanges import bitfinex_history, bybit_history, crypto_com_history, gate_io_history
from bot.exchanges._history import HistoryReader
from bot.types.history import SourceTransaction, WalletRef
from tests.unit.diagnosis.fakes import credentials
from tests.unit.exchanges.history_fakes import FakeExchange, FakeSleep, ok, reader


async def read(source: HistoryReader, exchange: str) -> list[SourceTransaction]:
    out: list[SourceTransaction] = []
    async for page in source.pages(WalletRef(1, exchange, "main"), credentials(exchange)):
        out.extend(page)
    return out


async def test_bybit_follows_the_cursor_then_walks_back_window_by_window(monkeypatch: Any) -> None:
    monkeypatch.setattr(bybit_history, "HISTORY_DAYS", 14)  # two windows

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        end = int(params["endTime"])
        assert int(params["endTime"]) - int(params["startTime"]) <= bybit_history.WINDOW_MS
        rows = [
            {
                "id": f"{end}-{params.get('cursor', 'first')}",
                "currency": "USDT",
                "type": "TRADE",
                "change": "-1.5",
                "fee": "0.01",
                "transactionTime": str(end - 1000),
            }
        ]
        cursor = "" if params.get("cursor") else "next"
        return ok({"retCode": 0, "retMsg": "OK", "result": {"list": rows, "nextPageCursor": cursor}})

    exchange = FakeExchange(answer)
    txs = await read(reader(bybit_history.BybitHistory, exchange), "bybit")
    assert len(exchange.requests) == 4  # 2 windows x 2 pages
    assert len({t.exchange_tx_id for t in txs}) == 4
    assert txs[0].kind == "trade" and str(txs[0].amount) == "-1.5"


async def test_gate_reads_pages_until_a_short_one(monkeypatch: Any) -> None:
    monkeypatch.setattr(gate_io_history, "PAGE_SIZE", 2)

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        page = int(params["page"])
        count = 2 if page < 3 else 1
        return ok(
            [
                {
                    "id": f"{page}-{i}",
                    "time": "1700000000000",
                    "currency": "BTC",
                    "change": "0.1",
                    "type": "deposit",
                }
                for i in range(count)
            ]
        )

    exchange = FakeExchange(answer)
    txs = await read(reader(gate_io_history.GateHistory, exchange), "gate_io")
    assert [t.exchange_tx_id for t in txs] == ["1-0", "1-1", "2-0", "2-1", "3-0"]


async def test_bitfinex_time_cursor_keeps_the_boundary_millisecond_without_repeats(monkeypatch: Any) -> None:
    monkeypatch.setattr(bitfinex_history, "PAGE_SIZE", 3)
    ledger = [[i, "BTC", None, 1000 + i // 2, None, 0.1, 1.0, None, "Deposit"] for i in range(7)][::-1]

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        rows = [r for r in ledger if r[3] <= int(params["end"])][: int(params["limit"])]
        return ok(rows)

    exchange = FakeExchange(answer)
    txs = await read(reader(bitfinex_history.BitfinexHistory, exchange), "bitfinex")
    assert sorted(int(t.exchange_tx_id) for t in txs) == list(range(7))


async def test_crypto_com_time_cursor_reads_every_entry_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(crypto_com_history, "PAGE_SIZE", 3)
    monkeypatch.setattr(crypto_com_history, "HISTORY_DAYS", 7)
    now_ms = 1_700_000_000_000
    monkeypatch.setattr("time.time", lambda: now_ms / 1000)
    journal = [
        {
            "journal_id": str(i),
            "instrument_name": "BTC",
            "transaction_qty": "0.5",
            "journal_type": "DEPOSIT",
            "event_timestamp_ms": str(now_ms - 10_000 + i // 2),
        }
        for i in range(5)
    ][::-1]

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        inner = params["params"]
        rows = [
            e for e in journal if inner["start_time"] <= int(e["event_timestamp_ms"]) <= inner["end_time"]
        ]
        return ok({"id": 1, "code": 0, "result": {"data": rows[: inner["limit"]]}})

    exchange = FakeExchange(answer)
    txs = await read(reader(crypto_com_history.CryptoComHistory, exchange, FakeSleep()), "crypto_com")
    assert sorted(int(t.exchange_tx_id) for t in txs) == list(range(5))
