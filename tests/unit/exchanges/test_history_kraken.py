"""Kraken history: `Ledgers` paged with `ofs` until `count`, nonces strictly increasing page after page, and
the sync's HTTP policy (a 429-like rate limit retried, an authentication error stopping the sync at once)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.exchanges._base import ExchangeTimeout
from bot.exchanges.kraken_history import KrakenHistory, kraken_asset
from bot.sync.runner import describe_failure
from bot.types.history import KeyRejected, key_rejection
from tests.support.clock import FakeClock
from tests.unit.exchanges.history_fakes import FakeExchange, FakeSleep, flat, ok, read_all, reader


def entry(n: int) -> tuple[str, dict[str, Any]]:
    return f"L{n:05d}-AAAAA-BBBBBB", {
        "refid": f"T{n:05d}",
        "time": 1_700_000_000 + n,
        "type": "trade" if n % 2 else "deposit",
        "asset": "XXBT" if n % 2 else "ZUSD",
        "amount": f"-0.{n:04d}" if n % 2 else "100.0000",
        "fee": "0.0000" if n % 2 else "0.2500",
        "balance": "1.0",
    }


def ledgers_of(total: int, page: int = 2) -> FakeExchange:
    """A ledger of `total` entries, newest first, `page` per answer."""

    def kraken_ledgers(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        offset = int(params.get("ofs", 0))
        numbers = range(total - 1 - offset, max(total - 1 - offset - page, -1), -1)
        return ok({"error": [], "result": {"ledger": dict(entry(n) for n in numbers), "count": total}})

    return FakeExchange(kraken_ledgers)


async def test_ledgers_are_paged_with_ofs_until_count() -> None:
    exchange = ledgers_of(5)
    pages = await read_all(reader(KrakenHistory, exchange), "kraken")

    assert [p["ofs"] for p in exchange.params] == ["0", "2", "4"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(tx.exchange_tx_id for tx in flat(pages)) == [entry(n)[0] for n in range(5)]
    nonces = [int(p["nonce"]) for p in exchange.params]
    assert nonces == sorted(set(nonces)), "Kraken nonces strictly increase page after page"


async def test_an_empty_ledger_is_one_request() -> None:
    exchange = ledgers_of(0)
    assert flat(await read_all(reader(KrakenHistory, exchange), "kraken")) == []
    assert len(exchange.requests) == 1


async def test_a_ledger_entry_keeps_its_id_and_becomes_tickers_and_decimals() -> None:
    txs = {
        tx.exchange_tx_id: tx for tx in flat(await read_all(reader(KrakenHistory, ledgers_of(2)), "kraken"))
    }
    deposit, trade = txs["L00000-AAAAA-BBBBBB"], txs["L00001-AAAAA-BBBBBB"]
    assert (deposit.kind, deposit.asset, deposit.amount, deposit.fee, deposit.fee_asset) == (
        "deposit",
        "USD",
        Decimal("100.0000"),
        Decimal("0.2500"),
        "USD",
    )
    assert (trade.kind, trade.asset, trade.amount, trade.fee) == ("trade", "BTC", Decimal("-0.0001"), None)
    assert trade.occurred_at == datetime.fromtimestamp(1_700_000_001, timezone.utc)
    assert trade.raw is not None and trade.raw["asset"] == "XXBT"


def test_kraken_asset_codes_become_tickers() -> None:
    assert [kraken_asset(c) for c in ("XXBT", "ZEUR", "XXDG", "DOT", "ETH2.S", "XETH.F")] == [
        "BTC",
        "EUR",
        "DOGE",
        "DOT",
        "ETH2.S",
        "ETH.F",
    ]


async def test_a_rate_limit_is_waited_out_and_the_page_asked_again() -> None:
    answers = iter(
        [
            ok({"error": ["EAPI:Rate limit exceeded"], "result": {}}),
            ok({"error": [], "result": {"ledger": dict([entry(0)]), "count": 1}}),
        ]
    )
    sleep = FakeSleep()
    exchange = FakeExchange(lambda request, params: next(answers))
    pages = await read_all(reader(KrakenHistory, exchange, sleep), "kraken")

    assert len(flat(pages)) == 1
    assert len(exchange.requests) == 2 and len(sleep.delays) == 1
    assert exchange.params[0]["nonce"] < exchange.params[1]["nonce"], "a retry is signed with a fresh nonce"


async def test_a_key_revoked_mid_sync_stops_it_at_once_with_the_raw_code() -> None:
    def revoked_after_first_page(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        if params["ofs"] == "0":
            return ok({"error": [], "result": {"ledger": dict([entry(3), entry(2)]), "count": 4}})
        return ok({"error": ["EAPI:Invalid key"], "result": {}})

    sleep = FakeSleep()
    exchange = FakeExchange(revoked_after_first_page)
    with pytest.raises(KeyRejected) as caught:
        await read_all(reader(KrakenHistory, exchange, sleep), "kraken")

    assert len(exchange.requests) == 2, "an authentication error is never retried"
    assert sleep.delays == []
    assert (caught.value.exchange, caught.value.raw_code) == ("kraken", "EAPI:Invalid key")
    stored = describe_failure(caught.value, None)
    assert key_rejection(stored) == ("kraken", "EAPI:Invalid key")
    assert key_rejection("RateLimited: Kraken is rate limiting this key") is None


async def test_each_call_gets_its_own_deadline() -> None:
    # Three pages, each answered 0.15 s after it was asked, on a fake clock: each is inside its 0.25 s, but a
    # deadline for the whole job would have run out before the third was asked.
    clock = FakeClock()

    def slow_but_in_time(request: httpx.Request, params: dict[str, Any]) -> httpx.Response:
        clock.now += 0.15
        offset = int(params["ofs"])
        return ok({"error": [], "result": {"ledger": dict([entry(2 - offset)]), "count": 3}})

    exchange = FakeExchange(slow_but_in_time)
    history = reader(KrakenHistory, exchange, deadline_clock=clock, per_call_s=0.25)
    assert len(flat(await read_all(history, "kraken"))) == 3
    assert clock.now == pytest.approx(0.45)


async def test_a_call_not_answered_within_its_deadline_times_out() -> None:
    async def never_answers(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    history = KrakenHistory(
        client=httpx.AsyncClient(transport=httpx.MockTransport(never_answers)),
        base_url="https://api.example.test",
        per_call_s=0.05,
    )
    with pytest.raises(ExchangeTimeout):
        await read_all(history, "kraken")
