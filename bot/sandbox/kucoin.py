"""KuCoin spot (reference/exchanges.md §4, derived vector §12).

`KC-API-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + endpoint-with-query + body))`; with
`KC-API-KEY-VERSION` 2 or 3 the passphrase header is `base64(HMAC-SHA256(secret, passphrase))`, with version 1
(or no version header) it is the plain passphrase. `KC-API-TIMESTAMP` (ms) must be within 5 s of the server.
Errors are `{"code": "4000xx", "msg": "…"}`.
"""

from __future__ import annotations

import base64
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

__all__ = ["KucoinSandbox", "kucoin_signature", "kucoin_passphrase"]

TIMESTAMP_WINDOW_MS = 5000


def kucoin_signature(secret: str, timestamp: str, method: str, endpoint: str, body: str) -> str:
    """The KC-API-SIGN for this request."""
    message = f"{timestamp}{method.upper()}{endpoint}{body}".encode()
    return base64.b64encode(hmac_digest(secret.encode(), message, "sha256")).decode()


def kucoin_passphrase(secret: str, passphrase: str) -> str:
    """The KC-API-PASSPHRASE header of a version 2 or 3 key."""
    return base64.b64encode(hmac_digest(secret.encode(), passphrase.encode(), "sha256")).decode()


def _error(code: str, msg: str, status: int = 401, headers: dict[str, str] | None = None) -> SandboxResponse:
    return json_response({"code": code, "msg": msg}, status, headers)


def _ok(data: object) -> SandboxResponse:
    return json_response({"code": "200000", "data": data})


class KucoinSandbox(ExchangeSandbox):
    exchange_id = "kucoin"

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v1/accounts", self._accounts),
            Route("GET", "/api/v1/user/api-key", self._api_key),
            Route("GET", "/api/v1/accounts/ledgers", self._ledgers),
        ]

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        return {("GET", "/api/v1/timestamp"): lambda request: _ok(self.now_ms())}

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return _error("404000", "Url Not Found", 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error("503000", "Service Unavailable", 503)
        if key.scenario == "rate_limited":
            # KuCoin tells the wait in its gateway headers (ms until the pool resets), not Retry-After.
            headers = {
                "gw-ratelimit-limit": "4000",
                "gw-ratelimit-remaining": "0",
                "gw-ratelimit-reset": "15000",
            }
            return _error(
                "429000", "Too many requests in a short period of time, please retry later.", 429, headers
            )
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        api_key = request.header("KC-API-KEY")
        sign = request.header("KC-API-SIGN")
        timestamp = request.header("KC-API-TIMESTAMP")
        passphrase = request.header("KC-API-PASSPHRASE")
        if not (api_key and sign and timestamp and passphrase):
            return _error(
                "400001",
                "Please check the header of your request for KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, "
                "KC-API-PASSPHRASE",
            )
        if not timestamp.isdigit() or abs(self.now_ms() - int(timestamp)) > TIMESTAMP_WINDOW_MS:
            return _error("400002", "Invalid KC-API-TIMESTAMP")
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _error("400003", "KC-API-KEY does not exist")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        version = request.header("KC-API-KEY-VERSION") or "1"
        if version not in ("1", "2", "3"):
            return _error("400009", "Invalid KC-API-KEY-VERSION")
        body = request.text
        # KuCoin signs the endpoint with its query string "not URL-encoded"; accept what was sent on the
        # wire and its decoded form, so percent-encoding a harmless character is not punished.
        candidates = {request.path_with_query, unquote(request.path_with_query)}
        expected = [kucoin_signature(key.api_secret, timestamp, request.method, c, body) for c in candidates]
        if not any(safe_equal(sign, e) for e in expected):
            return _error("400005", "Invalid KC-API-SIGN")
        assert key.passphrase is not None
        wanted = key.passphrase if version == "1" else kucoin_passphrase(key.api_secret, key.passphrase)
        if not safe_equal(passphrase, wanted):
            return _error("400004", "Invalid KC-API-PASSPHRASE")
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "ip_whitelist":
            return _error("400006", f"Invalid request IP, the current client IP is: {request.remote}")
        return None

    def _accounts(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return _ok([])
        return _ok(
            [
                {
                    "id": "00000000a1b2c3d4e5f60001",
                    "currency": "BTC",
                    "type": "main",
                    "balance": "0.5012",
                    "available": "0.5012",
                    "holds": "0",
                },
                {
                    "id": "00000000a1b2c3d4e5f60002",
                    "currency": "USDT",
                    "type": "trade",
                    "balance": "1250",
                    "available": "1250",
                    "holds": "0",
                },
            ]
        )

    def _api_key(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Permission names of V3 keys; the exact withdrawal string is unconfirmed (reference §4).
        permission = {"withdrawals_enabled": "General,Withdrawal", "trading_enabled": "General,Spot"}.get(
            key.scenario, "General"
        )
        return _ok(
            {
                "remark": f"keymedic-sandbox-{key.scenario}",
                "apiKey": key.api_key,
                "apiVersion": 3,
                "permission": permission,
                "ipWhitelist": "",
                "createdAt": 1700000000000,
                "uid": 165111215,
                "isMaster": True,
            }
        )

    def _ledgers(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # KuCoin pages: `currentPage` from 1, `pageSize` 10..500 (default 50), newest first, with `totalNum`
        # and `totalPage` (reference/exchanges.md §4 "History").
        params = dict(parse_qsl(request.raw_query))
        try:
            page = max(1, int(params.get("currentPage", "1")))
            size = min(500, max(10, int(params.get("pageSize", "50"))))
        except ValueError:
            return _error("400100", "Parameter error", 400)
        book = self.history(key)
        newest = book.size - 1 - (page - 1) * size
        items = [_ledger_item(book, i) for i in range(newest, max(newest - size, -1), -1)]
        return _ok(
            {
                "currentPage": page,
                "pageSize": size,
                "totalNum": book.size,
                "totalPage": (book.size + size - 1) // size,
                "items": items,
            }
        )


def _ledger_item(book: HistoryBook, i: int) -> dict[str, object]:
    """Ledger row `i`: a cycle of a USDT deposit, a trade (USDT out, coin in: two rows) and a withdrawal."""
    step = i % 4
    first = i - 1 if step == 2 else i
    coin = book.choice(first, "coin", ("BTC", "ETH"))
    usdt = book.amount(first, "usdt", "50", "2500", 2)
    price = book.amount(first, "price", "20000", "65000", 1) / (1 if coin == "BTC" else 15)
    created = book.ts_ms(first)
    if step == 0:
        currency, amount, fee, direction, biz, account = "USDT", fixed(usdt, 2), "0", "in", "Deposit", "MAIN"
    elif step == 1:
        currency, amount, direction, biz, account = "USDT", fixed(usdt, 2), "out", "Exchange", "TRADE"
        fee = fixed((usdt * Decimal("0.001")).quantize(Decimal("0.01")), 2)
    elif step == 2:
        qty = (usdt / price).quantize(Decimal("1E-8"))
        currency, amount, fee, direction, biz, account = coin, fixed(qty), "0", "in", "Exchange", "TRADE"
    else:
        currency, direction, biz, account = coin, "out", "Withdrawal", "MAIN"
        amount = fixed(book.amount(i, "qty", "0.001", "0.05"))
        fee = "0.0005" if coin == "BTC" else "0.005"
    return {
        # An ObjectId: 8 hex digits of creation time, then 16 more.
        "id": f"{created // 1000:08x}{book.hex(i, 'id', 16)}",
        "currency": currency,
        "amount": amount,
        "fee": fee,
        "balance": fixed(book.amount(i, "balance", "0", "10000"), 8),
        "accountType": account,
        "bizType": biz,
        "direction": direction,
        "createdAt": created,
        "context": "",
    }
