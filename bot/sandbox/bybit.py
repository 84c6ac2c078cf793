"""Bybit v5 (docs/exchanges/bybit.md).

`X-BAPI-SIGN = hex(HMAC-SHA256(secret, timestamp + api_key + recv_window + payload))`, the payload being the
raw query string (GET) or the JSON body (POST). A timestamp outside `server_time - recv_window <= ts <
server_time + 1000` is refused (10002). Errors are HTTP 200
`{"retCode": <code>, "retMsg": "…", "result": {}}`; the per-UID rate limit (10006) comes with
`X-Bapi-Limit-Reset-Timestamp`.
"""

from __future__ import annotations

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
)
from bot.sandbox._history import HistoryBook, fixed
from bot.sandbox.scenarios import BLOCKED_IP, SandboxKey

__all__ = ["BybitSandbox", "bybit_signature"]

DEFAULT_RECV_WINDOW_MS = 5000
WINDOW_LIMIT_MS = 7 * 86_400_000


def bybit_signature(secret: str, timestamp: str, api_key: str, recv_window: str, payload: str) -> str:
    """The X-BAPI-SIGN for this request (docs/exchanges/bybit.md "Signing")."""
    message = f"{timestamp}{api_key}{recv_window}{payload}".encode()
    return hmac_digest(secret.encode(), message, "sha256").hex()


def _error(code: int, msg: str, status: int = 200, headers: dict[str, str] | None = None) -> SandboxResponse:
    return json_response({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}}, status, headers)


def _ok(result: object) -> SandboxResponse:
    return json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}})


RESET_S = 60.0
BAN_S = 600.0


class BybitSandbox(ExchangeSandbox):
    exchange_id = "bybit"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The `lockout` key's rate-limit reset and IP ban, per (caller IP, key).
        self.reset_at: dict[tuple[str, str], float] = {}
        self.banned_until: dict[tuple[str, str], float] = {}

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v5/user/query-api", self._query_api),
            Route("GET", "/v5/account/wallet-balance", self._wallet_balance),
            Route("GET", "/v5/account/transaction-log", self._transaction_log),
        ]

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        return {
            ("GET", "/v5/market/time"): lambda request: _ok(
                {"timeSecond": str(int(self.now())), "timeNano": str(self.now_ms() * 1_000_000)}
            )
        }

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return json_response({"retCode": 10017, "retMsg": "route not found"}, 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error(10016, "Service unavailable", 503)
        if key.scenario == "rate_limited":
            reset = str(self.now_ms() + 1000)
            return _error(10006, "Too many visits!", headers={"X-Bapi-Limit-Reset-Timestamp": reset})
        if key.scenario == "lockout":
            # A client that ignores 10006's reset time gets the caller's address banned: HTTP 403 "access too
            # frequent", at least 10 minutes (docs/exchanges/bybit.md "Rate limits and bans"). Per caller and
            # key here, so one client's ban does not spill onto the others sharing the sandbox.
            now, who = self.now(), (request.remote, key.api_key)
            if self.banned_until.get(who, 0.0) > now:
                return SandboxResponse(403, b"403, access too frequent", "text/plain")
            if self.reset_at.get(who, 0.0) > now:
                self.banned_until[who] = now + BAN_S
                return SandboxResponse(403, b"403, access too frequent", "text/plain")
            self.reset_at[who] = now + RESET_S
            reset = str(int(self.reset_at[who] * 1000))
            return _error(10006, "Too many visits!", headers={"X-Bapi-Limit-Reset-Timestamp": reset})
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        api_key = request.header("X-BAPI-API-KEY") or ""
        timestamp = request.header("X-BAPI-TIMESTAMP") or ""
        sign = request.header("X-BAPI-SIGN") or ""
        if not (api_key and timestamp and sign):
            return _error(10003, "API key is invalid.")
        window = request.header("X-BAPI-RECV-WINDOW") or str(DEFAULT_RECV_WINDOW_MS)
        if not timestamp.isdigit() or not window.isdigit():
            return _error(10002, "invalid request, please check your server timestamp or recv_window param")
        now = self.now_ms()
        if not now - int(window) <= int(timestamp) < now + 1000:
            return _error(10002, "invalid request, please check your server timestamp or recv_window param")
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _error(10003, "API key is invalid.")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        payload = request.raw_query if request.method == "GET" else request.text
        expected = bybit_signature(key.api_secret, timestamp, api_key, window, payload)
        if not safe_equal(sign.lower(), expected):
            return _error(10004, "error sign! origin_string[…]")
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "ip_whitelist":
            return _error(
                10010, f"Unmatched IP, please check your API key's bound IP addresses. ({request.remote})"
            )
        if key.scenario == "not_activated":
            return _error(33004, "Your api key has expired.")
        return None

    def _query_api(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        permissions: dict[str, list[str]] = {
            "ContractTrade": [],
            "Spot": [],
            "Wallet": [],
            "Options": [],
            "Derivatives": [],
            "Exchange": [],
            "NFT": [],
        }
        read_only = 1
        if key.scenario == "withdrawals_enabled":
            read_only, permissions["Wallet"] = 0, ["AccountTransfer", "Withdraw"]
        elif key.scenario == "trading_enabled":
            read_only, permissions["Spot"] = 0, ["SpotTrade"]
        return _ok(
            {
                "id": "13770661",
                "note": f"keymedic-sandbox-{key.scenario}",
                "apiKey": key.api_key,
                "readOnly": read_only,
                "secret": "",
                "permissions": permissions,
                "ips": [BLOCKED_IP] if key.scenario == "ip_whitelist" else ["*"],
                "type": 1,
                "deadlineDay": 83,
                "expiredAt": "2099-01-01T00:00:00Z",
                "createdAt": "2024-01-01T00:00:00Z",
                "unified": 0,
                "uta": 1,
                "userID": 24617703,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "rsaPublicKey": "",
                "isMaster": True,
            }
        )

    def _wallet_balance(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        coins = []
        if key.scenario != "empty_account":
            coins = [
                {"coin": "BTC", "walletBalance": "0.5012", "equity": "0.5012", "usdValue": "12530"},
                {"coin": "USDT", "walletBalance": "1250", "equity": "1250", "usdValue": "1250"},
            ]
        return _ok(
            {"list": [{"accountType": "UNIFIED", "totalEquity": "13780" if coins else "0", "coin": coins}]}
        )

    def _transaction_log(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Newest first within [startTime, endTime] (at most 7 days; 24 h when absent), `limit` ≤ 50 (20), the
        # next page through `cursor` = the previous `nextPageCursor` (here: how many rows were already given).
        params = dict(parse_qsl(request.raw_query))
        try:
            end = int(params.get("endTime") or self.now_ms())
            start = int(params.get("startTime") or end - 86_400_000)
            limit = min(50, max(1, int(params.get("limit") or 20)))
            offset = int(params.get("cursor") or 0)
        except ValueError:
            return _error(10001, "params error")
        if end - start > WINDOW_LIMIT_MS or end < start:
            return _error(10001, "The time range between startTime and endTime cannot exceed 7 days.")
        book = self.history(key)
        rows = [i for i in range(book.size - 1, -1, -1) if start <= book.ts_ms(i) <= end]
        page = rows[offset : offset + limit]
        cursor = str(offset + limit) if offset + limit < len(rows) else ""
        return _ok({"list": [_log_row(book, i) for i in page], "nextPageCursor": cursor})


def _log_row(book: HistoryBook, i: int) -> dict[str, object]:
    """Row `i`: a USDT transfer in, then a spot buy, alternating."""
    usdt = book.amount(i, "usdt", "50", "2500", 2)
    trade = i % 2 == 1
    change = -usdt if trade else usdt
    fee = (usdt * Decimal("0.001")).quantize(Decimal("0.01")) if trade else Decimal(0)
    return {
        "id": f"{book.number(i, 'id', 10**8, 10**9 - 1)}-{i}",
        "symbol": "BTCUSDT" if trade else "",
        "category": "spot",
        "side": "Buy" if trade else "None",
        "transactionTime": str(book.ts_ms(i)),
        "type": "TRADE" if trade else "TRANSFER_IN",
        "qty": fixed(usdt, 2),
        "currency": "USDT",
        "change": fixed(change, 2),
        "fee": fixed(fee, 2),
        "cashBalance": fixed(book.amount(i, "balance", "0", "10000")),
        "tradeId": str(book.number(i, "tid", 10**8, 10**9)) if trade else "",
    }
