"""Binance spot + /sapi, and Binance.US on the same protocol (reference/exchanges.md §5, §1.2).

HMAC keys: `signature = hex(HMAC-SHA256(secret, queryString + body))` over the parameters exactly as sent, the
`signature` parameter itself left out; header `X-MBX-APIKEY`. A request is inside the window when
`timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow` (default 5000, max 60000).
Errors are `{"code": -NNNN, "msg": "…"}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from bot.sandbox._common import (
    ExchangeSandbox,
    PublicHandler,
    Route,
    SandboxRequest,
    SandboxResponse,
    hmac_digest,
    json_response,
    safe_equal,
    text_response,
)
from bot.sandbox._history import HistoryBook, fixed
from bot.sandbox.scenarios import SandboxKey

__all__ = ["BinanceSandbox", "BinanceUsSandbox", "binance_signature", "split_signature"]

_KEY_SHAPE = re.compile(r"^[A-Za-z0-9]{64}$")


def binance_signature(secret: str, payload: str) -> str:
    """hex(HMAC-SHA256(secret, payload)) — payload is the query string followed by the body."""
    return hmac_digest(secret.encode(), payload.encode(), "sha256").hex()


def split_signature(query: str, body: str) -> tuple[str, str | None]:
    """The signed payload (query + body without the `signature` pair) and the signature sent, if any."""
    signature = None
    kept = []
    for part in (query, body):
        pairs = []
        for pair in part.split("&") if part else []:
            if pair.startswith("signature="):
                signature = pair[len("signature=") :]
            else:
                pairs.append(pair)
        kept.append("&".join(pairs))
    return "".join(kept), signature


def _error(code: int, msg: str, status: int, headers: dict[str, str] | None = None) -> SandboxResponse:
    return json_response({"code": code, "msg": msg}, status, headers)


def _rejected() -> SandboxResponse:
    # -2015 is one code for three causes: unknown key, caller IP not on the list, missing permission.
    return _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)


RETRY_AFTER_S = 60.0
BAN_S = 120.0


class BinanceSandbox(ExchangeSandbox):
    exchange_id = "binance"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The `lockout` key's 429 window and 418 ban, per (caller IP, key).
        self.retry_until: dict[tuple[str, str], float] = {}
        self.banned_until: dict[tuple[str, str], float] = {}

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v3/account", self._account),
            Route("GET", "/sapi/v1/account/apiRestrictions", self._api_restrictions),
            Route("GET", "/api/v3/myTrades", self._my_trades),
            Route("GET", "/sapi/v1/capital/deposit/hisrec", self._deposits),
            Route("GET", "/sapi/v1/capital/withdraw/history", self._withdrawals),
        ]

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        return {("GET", "/api/v3/time"): lambda request: json_response({"serverTime": self.now_ms()})}

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return text_response("Not Found", 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error(
                -1008,
                "Server is currently overloaded with other requests. Please try again in a few minutes.",
                503,
            )
        if key.scenario == "rate_limited":
            return _error(
                -1003,
                "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use "
                "WebSocket Streams for live updates to avoid polling the API.",
                429,
                {"Retry-After": "60"},
            )
        if key.scenario == "lockout":
            return self._ban_after_ignored_429(request, key)
        return None

    def _ban_after_ignored_429(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Binance bans the caller's IP with 418 when it keeps calling after a 429, "scaling in duration for
        # repeat offenders from 2 minutes to 3 days" (reference §0.3, §5). The `lockout` key plays it: a 429
        # with Retry-After first; a call before that time is up gets the ban (per caller and key here, so one
        # client's ban does not spill onto the others sharing the sandbox).
        now, who = self.now(), (request.remote, key.api_key)
        banned_until = self.banned_until.get(who, 0.0)
        if banned_until > now:
            return self._banned(banned_until - now)
        if self.retry_until.get(who, 0.0) > now:
            self.banned_until[who] = now + BAN_S
            return self._banned(BAN_S)
        self.retry_until[who] = now + RETRY_AFTER_S
        return _error(
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use "
            "WebSocket Streams for live updates to avoid polling the API.",
            429,
            {"Retry-After": str(int(RETRY_AFTER_S))},
        )

    def _banned(self, remaining_s: float) -> SandboxResponse:
        until_ms = int((self.now() + remaining_s) * 1000)
        return _error(
            -1003,
            f"Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for "
            "live updates to avoid bans.",
            418,
            {"Retry-After": str(max(1, int(remaining_s)))},
        )

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        payload, signature = split_signature(request.raw_query, request.text)
        params = dict(parse_qsl(payload, keep_blank_values=True))
        if "timestamp" not in params:
            return _error(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.", 400
            )
        if not signature:
            return _error(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.", 400
            )
        api_key = request.header("X-MBX-APIKEY") or ""
        if not _KEY_SHAPE.match(api_key):
            return _error(-2014, "API-key format invalid.", 401)
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _rejected()
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        window = self._window_error(params)
        if window is not None:
            return window
        # HMAC signatures are hex and case-insensitive (reference §1.2).
        if not safe_equal(signature.lower(), binance_signature(key.api_secret, payload)):
            return _error(-1022, "Signature for this request is not valid.", 400)
        return key

    def _window_error(self, params: dict[str, str]) -> SandboxResponse | None:
        try:
            timestamp = int(params["timestamp"])
            recv_window = float(params.get("recvWindow", "5000"))
        except ValueError:
            return _error(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.", 400
            )
        if recv_window > 60000:
            return _error(-1131, "recvWindow must be less than 60000", 400)
        server_ms = self.now_ms()
        if timestamp >= 10**14:  # microseconds are accepted too
            timestamp //= 1000
        if timestamp >= server_ms + 1000:
            return _error(-1021, "Timestamp for this request was 1000ms ahead of the server's time.", 400)
        if server_ms - timestamp > recv_window:
            return _error(-1021, "Timestamp for this request is outside of the recvWindow.", 400)
        return None

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        # Binance answers a caller outside the key's IP list with -2015 everywhere, apiRestrictions included.
        if key.scenario == "ip_whitelist":
            return _rejected()
        return None

    def _account(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        balances = [
            {"asset": "BTC", "free": "0.50120000", "locked": "0.00000000"},
            {"asset": "ETH", "free": "2.00000000", "locked": "0.00000000"},
            {"asset": "USDT", "free": "1250.00000000", "locked": "0.00000000"},
        ]
        if key.scenario == "empty_account":
            balances = [{"asset": b["asset"], "free": "0.00000000", "locked": "0.00000000"} for b in balances]
        return json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": "0.00100000",
                    "taker": "0.00100000",
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": key.scenario == "trading_enabled",
                "canWithdraw": key.scenario == "withdrawals_enabled",
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.now_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 354937868,
            }
        )

    def _api_restrictions(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        withdrawals = key.scenario == "withdrawals_enabled"
        return json_response(
            {
                # "You must apply the IP Access Restriction filter in order to enable withdrawals."
                "ipRestrict": withdrawals,
                "createTime": 1698645219000,
                "enableReading": True,
                "enableWithdrawals": withdrawals,
                "enableInternalTransfer": False,
                "enableMargin": False,
                "enableFutures": False,
                "permitsUniversalTransfer": False,
                "enableVanillaOptions": False,
                "enableFixApiTrade": False,
                "enableFixReadOnly": False,
                "enableSpotAndMarginTrading": key.scenario == "trading_enabled",
                "enablePortfolioMarginTrading": False,
            }
        )

    def _my_trades(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # `symbol` is mandatory; `fromId` pages forward by trade id, `startTime`/`endTime` span at most 24 h,
        # neither gives the most recent `limit` (default 500, at most 1000); always oldest first
        # (reference/exchanges.md §5 "History").
        params = dict(parse_qsl(request.raw_query))
        symbol = params.get("symbol")
        if not symbol:
            return _error(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.", 400
            )
        residues = _SYMBOL_ROWS.get(symbol)
        if residues is None:
            return _error(-1121, "Invalid symbol.", 400)
        try:
            limit = min(1000, max(1, int(params.get("limit", "500"))))
            from_id = int(params["fromId"]) if "fromId" in params else None
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return _error(-1100, "Illegal characters found in a parameter.", 400)
        book = self.history(key)
        if start is not None or end is not None:
            end = end if end is not None else (start or 0) + _DAY_MS
            start = start if start is not None else end - _DAY_MS
            if end - start > _DAY_MS:
                return _error(-1127, "More than 24 hours between startTime and endTime.", 400)
        if from_id is not None or start is not None:
            lo = max(0, (from_id or 0) - _TRADE_ID_BASE) if from_id is not None else 0
            if start is not None:
                lo = max(lo, book.first_at_or_after(start))
            hi = book.first_at_or_after(end + 1) if end is not None else book.size
            found = _rows(range(lo, hi), residues, limit)
        else:
            found = _rows(range(book.size - 1, -1, -1), residues, limit)[::-1]
        return json_response([_trade(book, i, symbol) for i in found])

    def _deposits(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        return self._capital(request, key, 0, _deposit)

    def _withdrawals(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        return self._capital(request, key, 5, _withdrawal)

    def _capital(
        self,
        request: SandboxRequest,
        key: SandboxKey,
        residue: int,
        render: Callable[[HistoryBook, int], dict[str, object]],
    ) -> SandboxResponse:
        # Deposit and withdrawal history: `startTime`..`endTime` at most 90 days (default the last 90 days),
        # `offset`, `limit` (default and maximum 1000), newest first.
        params = dict(parse_qsl(request.raw_query))
        try:
            end = int(params["endTime"]) if "endTime" in params else None
            start = int(params["startTime"]) if "startTime" in params else None
            offset = max(0, int(params.get("offset", "0")))
            limit = min(1000, max(1, int(params.get("limit", "1000"))))
        except ValueError:
            return _error(-1100, "Illegal characters found in a parameter.", 400)
        if end is None:
            end = self.now_ms() if start is None else start + _WINDOW_MS
        if start is None:
            start = end - _WINDOW_MS
        if end - start > _WINDOW_MS:
            return _error(-1127, "More than 2160 hours between startTime and endTime.", 400)
        book = self.history(key)
        lo, hi = book.first_at_or_after(start), book.first_at_or_after(end + 1)
        first = lo + (residue - lo) % _CYCLE
        rows = range(first, hi, _CYCLE)[::-1][offset : offset + limit]
        return json_response([render(book, i) for i in rows])


# History rows cycle through six kinds: a deposit, four trades, a withdrawal. Which trade rows belong to which
# symbol (all three exist on Binance and Binance.US); any other symbol is "Invalid symbol".
_CYCLE = 6
_SYMBOL_ROWS: dict[str, tuple[int, ...]] = {"BTCUSDT": (1, 3), "ETHUSDT": (2,), "ETHBTC": (4,)}
_TRADE_ID_BASE = 28_000_000
_DAY_MS = 86_400_000
_WINDOW_MS = 90 * _DAY_MS


def _rows(candidates: range, residues: tuple[int, ...], limit: int) -> list[int]:
    found: list[int] = []
    for i in candidates:
        if i % _CYCLE in residues:
            found.append(i)
            if len(found) == limit:
                break
    return found


def _coin(book: HistoryBook, i: int) -> str:
    return book.choice(i, "coin", ("BTC", "ETH", "USDT"))


def _trade(book: HistoryBook, i: int, symbol: str) -> dict[str, object]:
    base, quote = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT"), "ETHBTC": ("ETH", "BTC")}[symbol]
    usd_price = book.amount(i, "price", "20000", "65000", 2)
    price = {"BTCUSDT": usd_price, "ETHUSDT": usd_price / 15, "ETHBTC": Decimal(1) / 15}[symbol]
    price = price.quantize(Decimal("0.01") if quote == "USDT" else Decimal("0.000001"))
    qty = book.amount(i, "qty", "0.001", "0.5") * (1 if base == "BTC" else 10)
    buyer = book.choice(i, "side", ("buy", "buy", "sell")) == "buy"
    commission_asset = base if buyer else quote
    quote_qty = (price * qty).quantize(Decimal("1E-8"))
    commission = (qty if buyer else quote_qty) * Decimal("0.001")
    return {
        "symbol": symbol,
        "id": _TRADE_ID_BASE + i,
        "orderId": 100_000_000 + i,
        "orderListId": -1,
        "price": fixed(price),
        "qty": fixed(qty),
        "quoteQty": fixed(quote_qty),
        "commission": fixed(commission.quantize(Decimal("1E-8"))),
        "commissionAsset": commission_asset,
        "time": book.ts_ms(i),
        "isBuyer": buyer,
        "isMaker": book.choice(i, "maker", ("yes", "no")) == "yes",
        "isBestMatch": True,
    }


def _deposit(book: HistoryBook, i: int) -> dict[str, object]:
    coin = _coin(book, i)
    amount = (
        book.amount(i, "amount", "100", "5000", 2) if coin == "USDT" else book.amount(i, "qty", "0.01", "1")
    )
    return {
        "id": str(769_800_519_366_000_000 + i),
        "amount": fixed(amount),
        "coin": coin,
        "network": {"BTC": "BTC", "ETH": "ETH", "USDT": "TRX"}[coin],
        "status": 1,
        "address": "bc1qsandbox" + book.hex(i, "address", 30),
        "addressTag": "",
        "txId": book.hex(i, "txid", 64),
        "insertTime": book.ts_ms(i),
        "transferType": 0,
        "confirmTimes": "2/2",
        "unlockConfirm": 0,
        "walletType": 0,
    }


def _withdrawal(book: HistoryBook, i: int) -> dict[str, object]:
    coin = book.choice(i, "coin", ("BTC", "ETH"))
    when = datetime.fromtimestamp(book.ts_ms(i) / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "id": book.hex(i, "withdrawal", 32),
        "amount": fixed(book.amount(i, "qty", "0.001", "0.05")),
        "transactionFee": "0.0001" if coin == "BTC" else "0.0012",
        "coin": coin,
        "status": 6,
        "address": "0xsandbox" + book.hex(i, "address", 31),
        "txId": book.hex(i, "txid", 64),
        "applyTime": when,
        "network": coin,
        "transferType": 0,
        "info": "",
        "confirmNo": 3,
        "walletType": 0,
        "txKey": "",
        "completeTime": when,
    }


class BinanceUsSandbox(BinanceSandbox):
    """Binance.US speaks the same protocol under its own host; only the keys differ."""

    exchange_id = "binance_us"
