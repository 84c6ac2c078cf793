"""Gate API v4 (reference/exchanges.md §11, derived vector §12).

`SIGN = hex(HMAC-SHA512(secret, METHOD\\n/api/v4/<path>\\nquery\\nhex(SHA512(body))\\nTimestamp))`, headers
`KEY`, `Timestamp` (unix seconds), `SIGN`. A timestamp more than 60 s from the server's clock is refused
(`REQUEST_EXPIRED`). Errors are non-2xx `{"label": "…", "message": "…"}`.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from urllib.parse import parse_qsl

from bot.sandbox._common import (
    ExchangeSandbox,
    Route,
    SandboxRequest,
    SandboxResponse,
    hmac_digest,
    json_response,
    safe_equal,
)
from bot.sandbox._history import HistoryBook, fixed
from bot.sandbox.scenarios import SandboxKey

__all__ = ["GateSandbox", "gate_signature"]

TIMESTAMP_WINDOW_S = 60.0


def gate_signature(secret: str, method: str, path: str, query: str, body: str, timestamp: str) -> str:
    """The SIGN Gate expects for this request."""
    hashed = hashlib.sha512(body.encode()).hexdigest()
    message = f"{method.upper()}\n{path}\n{query}\n{hashed}\n{timestamp}".encode()
    return hmac_digest(secret.encode(), message, "sha512").hex()


def _error(label: str, message: str, status: int = 401) -> SandboxResponse:
    return json_response({"label": label, "message": message}, status)


class GateSandbox(ExchangeSandbox):
    exchange_id = "gate_io"

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v4/account/detail", self._detail),
            Route("GET", "/api/v4/account/main_keys", self._main_keys),
            Route("GET", "/api/v4/spot/accounts", self._spot_accounts),
            Route("GET", "/api/v4/wallet/deposits", self._deposits),
            Route("GET", "/api/v4/spot/account_book", self._account_book),
        ]

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return _error("NOT_FOUND", "Not found", 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error("SERVER_ERROR", "Internal server error", 503)
        if key.scenario == "rate_limited":
            return _error("TOO_MANY_REQUESTS", "Request rate limit exceeded", 429)
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        api_key, sign, timestamp = request.header("KEY"), request.header("SIGN"), request.header("Timestamp")
        if not (api_key and sign and timestamp):
            return _error("MISSING_REQUIRED_HEADER", "Missing required authentication header", 400)
        try:
            moment = float(timestamp)
        except ValueError:
            return _error("INVALID_PARAM_VALUE", "Invalid Timestamp", 400)
        if abs(self.now() - moment) > TIMESTAMP_WINDOW_S:
            return _error("REQUEST_EXPIRED", "Request timestamp expired")
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _error("INVALID_KEY", "Invalid key provided")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        expected = gate_signature(
            key.api_secret, request.method, request.path, request.raw_query, request.text, timestamp
        )
        if not safe_equal(sign.lower(), expected):
            return _error("INVALID_SIGNATURE", "Signature mismatch")
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "ip_whitelist":
            return _error("IP_FORBIDDEN", f"Request IP {request.remote} not in whitelist", 403)
        return None

    def _detail(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        return json_response(
            {"user_id": 1667201533, "ip_whitelist": [], "currency_pairs": [], "key": {"mode": 1}, "tier": 0}
        )

    def _main_keys(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        writable = {"withdrawals_enabled": "wallet", "trading_enabled": "spot"}.get(key.scenario)
        perms = [{"name": n, "read_only": n != writable} for n in ("wallet", "spot", "account")]
        masked = key.api_key[:4] + "****" + key.api_key[-4:]
        other = {
            "mode": 1,
            "name": "another key",
            "key": "ffff****0000",
            "state": 1,
            "perms": [],
            "ip_whitelist": [],
        }
        mine = {
            "mode": 1,
            "name": f"keymedic-sandbox-{key.scenario}",
            "key": masked,
            "state": 1,
            "perms": perms,
            "ip_whitelist": [],
            "currency_pairs": [],
            "user_id": 1667201533,
            "created_at": 1700000000,
            "updated_at": 1700000000,
            "last_access": int(self.now()),
        }
        return json_response([other, mine])

    def _spot_accounts(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return json_response([])
        return json_response(
            [
                {"currency": "BTC", "available": "0.5012", "locked": "0", "update_id": 7},
                {"currency": "USDT", "available": "1250", "locked": "0", "update_id": 9},
            ]
        )

    def _deposits(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        book = self.history(key)
        if book.size == 0:
            return json_response([])
        i = book.size - 1
        return json_response(
            [
                {
                    "id": f"d{i}",
                    "timestamp": str(book.ts_ms(i) // 1000),
                    "currency": "USDT",
                    "amount": "100",
                    "status": "DONE",
                }
            ]
        )

    def _account_book(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Newest first, `page` from 1, `limit` ≤ 1000 (default 100).
        params = dict(parse_qsl(request.raw_query))
        try:
            page = max(1, int(params.get("page") or 1))
            limit = min(1000, max(1, int(params.get("limit") or 100)))
        except ValueError:
            return _error("INVALID_PARAM_VALUE", "Invalid page or limit", 400)
        book = self.history(key)
        newest = book.size - 1 - (page - 1) * limit
        rows = range(newest, max(-1, newest - limit), -1)
        return json_response([_entry(book, i) for i in rows])


def _entry(book: HistoryBook, i: int) -> dict[str, object]:
    """Entry `i`: a USDT deposit, then a spot buy's USDT leg, alternating."""
    usdt = book.amount(i, "usdt", "50", "2500", 2)
    trade = i % 2 == 1
    return {
        "id": str(book.number(i, "id", 10**9, 10**10 - 1) * 1000 + i),
        "time": str(book.ts_ms(i)),
        "currency": "USDT",
        "change": fixed(-usdt if trade else usdt, 2),
        "balance": fixed(book.amount(i, "balance", "0", "10000") + Decimal(0)),
        "type": "order_fill" if trade else "deposit",
        "text": "",
    }
