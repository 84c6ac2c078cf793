"""KuCoin history: ledgers paged with currentPage/pageSize until totalPage; `direction` signs the amount."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.exchanges.kucoin_history import KucoinHistory
from bot.types.history import KeyRejected
from tests.unit.exchanges.history_fakes import FakeExchange, flat, ok, read_all, reader


def item(n: int) -> dict[str, Any]:
    return {
        "id": f"{n:024x}",
        "currency": "BTC",
        "amount": "0.5",
        "fee": "0.001" if n % 2 else "0",
        "bizType": "Withdrawal" if n % 2 else "Deposit",
        "direction": "out" if n % 2 else "in",
        "createdAt": 1_700_000_000_000 + n,
    }


def kucoin_ledgers(total: int, size: int) -> FakeExchange:
    def answer(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        page = int(params["currentPage"])
        numbers = range((page - 1) * size, min(page * size, total))
        data = {
            "currentPage": page,
            "pageSize": size,
            "totalNum": total,
            "totalPage": (total + size - 1) // size,
            "items": [item(n) for n in numbers],
        }
        return ok({"code": "200000", "data": data})

    return FakeExchange(answer)


async def test_ledgers_are_paged_until_the_last_page() -> None:
    exchange = kucoin_ledgers(total=5, size=2)
    txs = flat(await read_all(reader(KucoinHistory, exchange), "kucoin"))
    assert [p["currentPage"] for p in exchange.params] == ["1", "2", "3"]
    assert all(p["pageSize"] == "500" for p in exchange.params)
    assert len(txs) == 5
    withdrawal = next(tx for tx in txs if tx.kind == "withdrawal")
    assert withdrawal.amount == Decimal("-0.5") and withdrawal.fee == Decimal("0.001")


async def test_no_items_is_one_request() -> None:
    exchange = kucoin_ledgers(total=0, size=2)
    assert flat(await read_all(reader(KucoinHistory, exchange), "kucoin")) == []
    assert len(exchange.requests) == 1


async def test_a_wrong_passphrase_stops_the_sync() -> None:
    exchange = FakeExchange(lambda r, p: ok({"code": "400004", "msg": "Invalid KC-API-PASSPHRASE"}, 401))
    with pytest.raises(KeyRejected) as caught:
        await read_all(reader(KucoinHistory, exchange), "kucoin")
    assert caught.value.raw_code == "400004" and len(exchange.requests) == 1
