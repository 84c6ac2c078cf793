"""The sandbox's history: deterministic, lazily generated at any size, paged the way each exchange pages, and
empty for the `empty_account` key. Handlers are called directly (authentication is tested elsewhere)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.sandbox import server
from bot.sandbox._common import ExchangeSandbox, SandboxRequest, SandboxResponse
from bot.sandbox._history import DAY_MS, SPAN_DAYS, HistoryBook
from bot.sandbox.binance import BinanceSandbox
from bot.sandbox.bitstamp import BitstampSandbox
from bot.sandbox.coinbase import CoinbaseSandbox
from bot.sandbox.gemini import GeminiSandbox
from bot.sandbox.kraken import KrakenSandbox
from bot.sandbox.kucoin import KucoinSandbox
from bot.sandbox.okx import OkxSandbox
from bot.sandbox.scenarios import SandboxKey, credentials_for, registered_key

NOW = 1_700_000_000.0


def key(exchange: str, scenario: str = "valid") -> SandboxKey:
    found = registered_key(exchange, credentials_for(exchange, scenario)["api_key"])
    assert found is not None
    return found


def ask(
    sandbox: ExchangeSandbox,
    handler: Callable[[SandboxRequest, SandboxKey], SandboxResponse],
    path: str,
    *,
    query: str = "",
    body: str = "",
    payload: dict[str, Any] | None = None,
    scenario: str = "valid",
) -> Any:
    headers = {}
    if payload is not None:
        headers["X-GEMINI-PAYLOAD"] = base64.b64encode(json.dumps(payload).encode()).decode()
    request = SandboxRequest("POST" if body or payload else "GET", path, query, headers, body.encode())
    response = handler(request, key(sandbox.exchange_id, scenario))
    assert response.status == 200, response.body
    return response.json()


def test_a_history_book_is_deterministic_ordered_and_in_the_past() -> None:
    book, again = HistoryBook("kraken", 1000, NOW), HistoryBook("kraken", 1000, NOW + 60)
    times = [book.ts_ms(i) for i in range(book.size)]
    assert times == sorted(set(times)), "strictly increasing"
    assert times == [again.ts_ms(i) for i in range(again.size)], "the same all day"
    assert book.end_ms - SPAN_DAYS * DAY_MS <= times[0] and times[-1] < NOW * 1000
    assert book.first_at_or_after(times[10]) == 10 and book.first_at_or_after(times[10] + 1) == 11
    assert book.first_at_or_after(0) == 0 and book.first_at_or_after(10**15) == book.size
    assert HistoryBook("okx", 1000, NOW).amount(5, "x", "1", "2") != book.amount(5, "x", "1", "2")


def test_a_page_of_a_huge_history_costs_only_the_page() -> None:
    sandbox = KrakenSandbox(clock=lambda: NOW, history_size=10_000_000)
    started = time.perf_counter()
    result = ask(sandbox, sandbox._ledgers, "/0/private/Ledgers", body="nonce=1&ofs=9999990")["result"]
    assert time.perf_counter() - started < 0.5
    assert (len(result["ledger"]), result["count"]) == (10, 10_000_000)


def test_kraken_pages_fifty_newest_first_with_a_count() -> None:
    sandbox = KrakenSandbox(clock=lambda: NOW, history_size=120)
    pages = [
        ask(sandbox, sandbox._ledgers, "/0/private/Ledgers", body=f"ofs={o}")["result"] for o in (0, 50, 100)
    ]
    assert [len(p["ledger"]) for p in pages] == [50, 50, 20] and {p["count"] for p in pages} == {120}
    entries = [e for p in pages for e in p["ledger"].values()]
    assert [e["time"] for e in entries] == sorted((e["time"] for e in entries), reverse=True)
    assert len({i for p in pages for i in p["ledger"]}) == 120
    trades = [e for e in entries if e["type"] == "trade"]
    assert trades and all(sum(t["refid"] == e["refid"] for t in trades) == 2 for e in trades), "two legs"


def test_kucoin_pages_with_current_page_and_total_page() -> None:
    sandbox = KucoinSandbox(clock=lambda: NOW, history_size=45)
    first = ask(sandbox, sandbox._ledgers, "/api/v1/accounts/ledgers", query="currentPage=1&pageSize=20")[
        "data"
    ]
    last = ask(sandbox, sandbox._ledgers, "/api/v1/accounts/ledgers", query="currentPage=3&pageSize=20")[
        "data"
    ]
    assert (first["totalNum"], first["totalPage"], len(first["items"]), len(last["items"])) == (45, 3, 20, 5)
    assert first["items"][0]["createdAt"] >= last["items"][-1]["createdAt"]


def test_okx_pages_with_after_and_keeps_the_seven_day_window() -> None:
    sandbox = OkxSandbox(clock=lambda: NOW, history_size=400)
    first = ask(sandbox, sandbox._bills, "/api/v5/account/bills-archive", query="limit=100")["data"]
    after = first[-1]["billId"]
    second = ask(sandbox, sandbox._bills, "/api/v5/account/bills-archive", query=f"limit=100&after={after}")[
        "data"
    ]
    ids = [int(b["billId"]) for b in first + second]
    assert len(ids) == 200 and ids == sorted(ids, reverse=True)
    recent = ask(sandbox, sandbox._bills, "/api/v5/account/bills", query="limit=100")["data"]
    assert 0 < len(recent) < 100
    assert all(int(b["ts"]) >= NOW * 1000 - 7 * DAY_MS for b in recent)


def test_coinbase_fills_follow_a_cursor_to_the_end() -> None:
    sandbox = CoinbaseSandbox(clock=lambda: NOW, history_size=25)
    seen: list[str] = []
    cursor = ""
    while True:
        body = ask(
            sandbox, sandbox._fills, "/fills", query="limit=10" + (f"&cursor={cursor}" if cursor else "")
        )
        seen += [f["entry_id"] for f in body["fills"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 25


def test_bitstamp_pages_with_offset_and_limit() -> None:
    sandbox = BitstampSandbox(clock=lambda: NOW, history_size=30)
    page = ask(sandbox, sandbox._user_transactions, "/ut/", body="offset=20&limit=1000")
    assert len(page) == 10
    trade = next(row for row in page if row["type"] == "2")
    assert any(k.endswith("_usd") for k in trade) and trade["order_id"]


def test_binance_windows_symbols_and_from_id() -> None:
    sandbox = BinanceSandbox(clock=lambda: NOW, history_size=60)
    deposits = ask(sandbox, sandbox._deposits, "/d")
    withdrawals = ask(sandbox, sandbox._withdrawals, "/w")
    assert (len(deposits), len(withdrawals)) == (10, 10)
    trades = ask(sandbox, sandbox._my_trades, "/t", query="symbol=BTCUSDT&fromId=0&limit=5")
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades) and len(trades) == 5
    more = ask(
        sandbox, sandbox._my_trades, "/t", query=f"symbol=BTCUSDT&fromId={trades[-1]['id'] + 1}&limit=500"
    )
    assert len(trades) + len(more) == 20
    request = SandboxRequest("GET", "/t", "symbol=DOGEUSDT")
    assert sandbox._my_trades(request, key("binance")).json()["code"] == -1121
    too_long = SandboxRequest("GET", "/d", f"startTime=0&endTime={91 * DAY_MS}")
    assert sandbox._deposits(too_long, key("binance")).json()["code"] == -1127


def test_gemini_pages_by_timestamp() -> None:
    sandbox = GeminiSandbox(clock=lambda: NOW, history_size=40)
    first = ask(sandbox, sandbox._my_trades, "/v1/mytrades", payload={"timestamp": 0, "limit_trades": 20})
    since = max(t["timestampms"] for t in first)
    rest = ask(
        sandbox, sandbox._my_trades, "/v1/mytrades", payload={"timestamp": since + 1, "limit_trades": 500}
    )
    assert len(first) == 20 and len(rest) == 10, "30 of 40 rows are trades"
    transfers = ask(
        sandbox, sandbox._transfers, "/v1/transfers", payload={"timestamp": 0, "limit_transfers": 50}
    )
    assert len(transfers) == 10 and {t["type"] for t in transfers} == {"Deposit", "Withdrawal"}


@pytest.mark.parametrize(
    ("sandbox", "call"),
    [
        (
            KrakenSandbox,
            lambda s: ask(s, s._ledgers, "/", body="ofs=0", scenario="empty_account")["result"]["ledger"],
        ),
        (KucoinSandbox, lambda s: ask(s, s._ledgers, "/", scenario="empty_account")["data"]["items"]),
        (OkxSandbox, lambda s: ask(s, s._bills, "/bills-archive", scenario="empty_account")["data"]),
        (CoinbaseSandbox, lambda s: ask(s, s._fills, "/", scenario="empty_account")["fills"]),
        (
            BitstampSandbox,
            lambda s: ask(s, s._user_transactions, "/", body="limit=1", scenario="empty_account"),
        ),
        (BinanceSandbox, lambda s: ask(s, s._deposits, "/", scenario="empty_account")),
        (GeminiSandbox, lambda s: ask(s, s._transfers, "/", payload={}, scenario="empty_account")),
    ],
)
def test_the_empty_account_has_no_history(sandbox: type[ExchangeSandbox], call: Callable[[Any], Any]) -> None:
    assert not call(sandbox(clock=lambda: NOW, history_size=100))


def test_the_history_size_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMEDIC_SANDBOX_HISTORY_SIZE", "123")
    app = server.build_app()
    assert {s.history_size for s in app[server._SANDBOXES_KEY].values()} == {123}
    assert {s.history_size for s in server.build_app(history_size=7)[server._SANDBOXES_KEY].values()} == {7}


def test_the_sandbox_imports_nothing_it_checks() -> None:
    code = (
        "import sys, bot.sandbox.server, bot.sandbox.cli; "
        "print([m for m in sys.modules if m.startswith(('bot.exchanges', 'bot.diagnosis', 'bot.sync'))])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
