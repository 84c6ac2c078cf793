"""OKX history: the 7-day bills, then the archive from the oldest bill already read (`after`), each paged
until a short page; a 5xx is retried; a rejected key stops the sync."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

import bot.exchanges.okx_history as okx_history
from bot.exchanges.okx_history import OkxHistory
from bot.types.history import KeyRejected
from tests.unit.exchanges.history_fakes import FakeExchange, FakeSleep, flat, ok, read_all, reader


def bill(bill_id: int) -> dict[str, Any]:
    return {
        "billId": str(bill_id),
        "ccy": "USDT",
        "balChg": "-10.5",
        "fee": "-0.01",
        "type": "2",
        "ts": "1700000000000",
    }


def okx_bills(recent: list[int], archive: list[int], page: int) -> FakeExchange:
    """Bill ids newest first; `after` gives the ones below it."""

    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        ids = recent if request.url.path.endswith("/bills") else archive
        if "after" in params:
            ids = [i for i in ids if i < int(params["after"])]
        return ok({"code": "0", "msg": "", "data": [bill(i) for i in ids[:page]]})

    return FakeExchange(answer)


async def test_bills_then_the_archive_continue_after_the_oldest_bill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(okx_history, "PAGE_SIZE", 2)
    exchange = okx_bills(recent=[90, 80, 70], archive=[90, 80, 70, 60, 50, 40], page=2)
    txs = flat(await read_all(reader(OkxHistory, exchange), "okx"))

    calls = [(path.rsplit("/", 1)[-1], p.get("after")) for path, p in exchange.calls()]
    assert calls == [
        ("bills", None),
        ("bills", "80"),
        ("bills-archive", "70"),
        ("bills-archive", "50"),
    ]
    assert [tx.exchange_tx_id for tx in txs] == ["90", "80", "70", "60", "50", "40"]
    assert txs[0].amount == Decimal("-10.5") and txs[0].fee == Decimal("0.01") and txs[0].kind == "trade"


async def test_a_server_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(
        [
            ok({"code": "50001", "msg": "Service temporarily unavailable", "data": []}, 503),
            ok({"code": "0", "msg": "", "data": [bill(1)]}),
            ok({"code": "0", "msg": "", "data": []}),
        ]
    )
    sleep = FakeSleep()
    exchange = FakeExchange(lambda request, params: next(answers))
    assert len(flat(await read_all(reader(OkxHistory, exchange, sleep), "okx"))) == 1
    assert len(sleep.delays) == 1 and len(exchange.requests) == 3


async def test_a_rejected_key_stops_the_sync() -> None:
    exchange = FakeExchange(
        lambda r, p: ok({"code": "50111", "msg": "Invalid OK-ACCESS-KEY", "data": []}, 401)
    )
    with pytest.raises(KeyRejected) as caught:
        await read_all(reader(OkxHistory, exchange), "okx")
    assert caught.value.raw_code == "50111" and len(exchange.requests) == 1
