"""OKX v5 (reference/exchanges.md §6, derived vectors §12).

`OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath(?query) + body))`, the timestamp
ISO 8601 UTC with milliseconds (`2020-12-08T09:08:57.715Z`), the passphrase sent in plain text. Requests
more than 30 s from the server's clock are refused. Errors are HTTP 401
`{"code": "501xx", "msg": "…", "data": []}`.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qsl, unquote

from bot.sandbox._common import (
    ExchangeSandbox,
    PublicHandler,
    Route,
    SandboxRequest,
    SandboxResponse,
    hmac_digest,
    json_response,
    safe_equal,
)
from bot.sandbox._history import HistoryBook, fixed
from bot.sandbox.scenarios import SandboxKey

__all__ = ["OkxSandbox", "okx_signature", "parse_okx_timestamp"]

TIMESTAMP_WINDOW_S = 30.0


def okx_signature(secret: str, timestamp: str, method: str, request_path: str, body: str) -> str:
    """The OK-ACCESS-SIGN for this request."""
    message = f"{timestamp}{method.upper()}{request_path}{body}".encode()
    return base64.b64encode(hmac_digest(secret.encode(), message, "sha256")).decode()


def parse_okx_timestamp(text: str) -> float | None:
    """Epoch seconds of an OK-ACCESS-TIMESTAMP, or None when it is not `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc).timestamp()


def _error(code: str, msg: str, status: int = 401) -> SandboxResponse:
    return json_response({"code": code, "msg": msg, "data": []}, status)


def _ok(data: list[object]) -> SandboxResponse:
    return json_response({"code": "0", "msg": "", "data": data})


_REQUIRED = (
    ("OK-ACCESS-KEY", "50103"),
    ("OK-ACCESS-PASSPHRASE", "50104"),
    ("OK-ACCESS-SIGN", "50106"),
    ("OK-ACCESS-TIMESTAMP", "50107"),
)


class OkxSandbox(ExchangeSandbox):
    exchange_id = "okx"

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v5/account/balance", self._balance),
            Route("GET", "/api/v5/account/config", self._config),
            Route("GET", "/api/v5/account/bills", self._bills),
            Route("GET", "/api/v5/account/bills-archive", self._bills),
        ]

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        return {("GET", "/api/v5/public/time"): lambda request: _ok([{"ts": str(self.now_ms())}])}

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return json_response({"code": "404", "msg": "Not Found"}, 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error("50001", "Service temporarily unavailable. Please try again later.", 503)
        if key.scenario == "rate_limited":
            return _error(
                "50011",
                "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
                429,
            )
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        for header, code in _REQUIRED:
            if not request.header(header):
                return _error(code, f"Request header {header} cannot be empty.")
        timestamp = request.header("OK-ACCESS-TIMESTAMP") or ""
        moment = parse_okx_timestamp(timestamp)
        if moment is None:
            return _error("50112", "Invalid OK-ACCESS-TIMESTAMP")
        if abs(self.now() - moment) > TIMESTAMP_WINDOW_S:
            return _error("50102", "Timestamp request expired")
        key = self.lookup(request.header("OK-ACCESS-KEY") or "")
        if key is None or key.scenario == "revoked":
            return _error("50111", "Invalid OK-ACCESS-KEY")
        # The sandbox's keys are live-trading keys; a demo-trading request is in the wrong environment.
        if request.header("x-simulated-trading") == "1":
            return _error("50101", "APIKey does not match current environment.")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        candidates = {request.path_with_query, unquote(request.path_with_query)}
        sign = request.header("OK-ACCESS-SIGN") or ""
        expected = [
            okx_signature(key.api_secret, timestamp, request.method, c, request.text) for c in candidates
        ]
        if not any(safe_equal(sign, e) for e in expected):
            return _error("50113", "Invalid Sign")
        if not safe_equal(request.header("OK-ACCESS-PASSPHRASE") or "", key.passphrase or ""):
            return _error("50105", "OK-ACCESS-PASSPHRASE incorrect")
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "ip_whitelist":
            return _error(
                "50110", f"Your IP {request.remote} is not included in your API key's IP whitelist."
            )
        return None

    def _balance(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        details = []
        if key.scenario != "empty_account":
            details = [
                {
                    "ccy": "BTC",
                    "eq": "0.5012",
                    "cashBal": "0.5012",
                    "availBal": "0.5012",
                    "frozenBal": "0",
                    "eqUsd": "12530",
                    "uTime": "1688464484178",
                },
                {
                    "ccy": "USDT",
                    "eq": "1250",
                    "cashBal": "1250",
                    "availBal": "1250",
                    "frozenBal": "0",
                    "eqUsd": "1250",
                    "uTime": "1688464484178",
                },
            ]
        total = "0" if not details else "13780"
        return _ok(
            [{"totalEq": total, "adjEq": "", "isoEq": "0", "details": details, "uTime": str(self.now_ms())}]
        )

    def _config(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        perm = {"withdrawals_enabled": "read_only,withdraw", "trading_enabled": "read_only,trade"}.get(
            key.scenario, "read_only"
        )
        return _ok(
            [
                {
                    "uid": "44705892343619584",
                    "mainUid": "44705892343619584",
                    "acctLv": "1",
                    "posMode": "net_mode",
                    "autoLoan": False,
                    "greeksType": "PA",
                    "level": "Lv1",
                    "levelTmp": "",
                    "ctIsoMode": "automatic",
                    "mgnIsoMode": "automatic",
                    "roleType": "0",
                    "traderInsts": [],
                    "spotRoleType": "0",
                    "spotTraderInsts": [],
                    "opAuth": "0",
                    "kycLv": "2",
                    "label": f"keymedic-sandbox-{key.scenario}",
                    "ip": "",
                    "perm": perm,
                    "liquidationGear": "-1",
                    "enableSpotBorrow": False,
                    "spotBorrowAutoRepay": False,
                    "type": "0",
                }
            ]
        )

    def _bills(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Newest first, at most `limit` (100); `after=<billId>` gives older bills, `before=<billId>` newer
        # ones. `bills` covers the last 7 days, `bills-archive` the last 3 months (reference/exchanges.md §6).
        params = dict(parse_qsl(request.raw_query))
        try:
            limit = min(100, max(1, int(params.get("limit", "100"))))
            after = int(params["after"]) if params.get("after") else None
            before = int(params["before"]) if params.get("before") else None
        except ValueError:
            return _error("51000", "Parameter limit, after or before error", 400)
        book = self.history(key)
        days = 7 if request.path.endswith("/bills") else 90
        oldest = book.first_at_or_after(self.now_ms() - days * 86_400_000)
        if oldest % 4 == 2:
            oldest += 1  # the second bill of a trade carries the first one's time (see `_bill`)
        newest = book.size - 1
        if after is not None:
            newest = min(newest, _last_below(book, after))
        if before is not None:
            oldest = max(oldest, _last_below(book, before + 1) + 1)
        rows = range(newest, max(newest - limit, oldest - 1), -1)
        return _ok([_bill(book, i) for i in rows])


# Bill ids grow with time, like OKX's: row i has an id in [BASE + i * 1000, BASE + i * 1000 + 999].
_BILL_BASE = 600_000_000_000_000_000


def _bill_id(book: HistoryBook, i: int) -> int:
    return _BILL_BASE + i * 1000 + book.number(i, "bill", 0, 999)


def _last_below(book: HistoryBook, bill_id: int) -> int:
    """The index of the newest row whose bill id is below `bill_id` (-1 when none is)."""
    k = (bill_id - _BILL_BASE) // 1000
    if k < 0:
        return -1
    return k if _bill_id(book, k) < bill_id else k - 1


def _bill(book: HistoryBook, i: int) -> dict[str, object]:
    """Bill row `i`: a cycle of a USDT transfer in, a spot trade (USDT out, coin in: two bills) and a coin
    transfer out."""
    step = i % 4
    first = i - 1 if step == 2 else i
    coin = book.choice(first, "coin", ("BTC", "ETH"))
    usdt = book.amount(first, "usdt", "50", "2500", 2)
    price = book.amount(first, "price", "20000", "65000", 1) / (1 if coin == "BTC" else 15)
    qty = (usdt / price).quantize(Decimal("1E-8"))
    trade = {"instId": f"{coin}-USDT", "instType": "SPOT", "mgnMode": "cash", "execType": "T"}
    trade |= {
        "ordId": str(book.number(first, "ord", 10**17, 10**18 - 1)),
        "tradeId": str(book.number(first, "tid", 10**8, 10**9)),
    }
    blank = {"instId": "", "instType": "", "mgnMode": "", "execType": "", "ordId": "", "tradeId": ""}
    if step == 0:
        ccy, change, fee, kind, sub, extra = "USDT", fixed(usdt, 2), "0", "1", "11", blank
    elif step == 1:
        ccy, change, kind, sub, extra = "USDT", fixed(-usdt, 2), "2", "1", trade
        fee = fixed(-(usdt * Decimal("0.001")).quantize(Decimal("0.01")), 2)
    elif step == 2:
        ccy, change, fee, kind, sub, extra = coin, fixed(qty), "0", "2", "1", trade
    else:
        ccy, change, fee, kind, sub, extra = (
            coin,
            fixed(-book.amount(i, "qty", "0.001", "0.05")),
            "0",
            "1",
            "12",
            blank,
        )
    return {
        "bal": fixed(book.amount(i, "balance", "0", "10000")),
        "balChg": change,
        "billId": str(_bill_id(book, i)),
        "ccy": ccy,
        "fee": fee,
        "from": "6" if sub == "11" else "",
        "to": "18" if sub == "11" else ("6" if sub == "12" else ""),
        "notes": "",
        "pnl": "0",
        "posBal": "0",
        "posBalChg": "0",
        "subType": sub,
        "sz": change.lstrip("-"),
        "ts": str(book.ts_ms(first)),
        "type": kind,
        **extra,
    }
