"""Crypto.com Exchange v1 (reference/exchanges.md §10, derived vector §12).

POST JSON `{id, method, api_key, params, nonce, sig}` to `/exchange/v1/<method>`, with
`sig = hex(HMAC-SHA256(secret, method + id + api_key + paramString + nonce))`, paramString the params sorted
by key, key and value concatenated, lists flattened (depth 3). A nonce more than 60 s from the server's clock
is refused (40102). A wrong key and a wrong signature get the same 40101, as on the exchange.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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

__all__ = ["CryptoComSandbox", "crypto_com_signature", "params_text"]

NONCE_WINDOW_MS = 60_000
PREFIX = "/exchange/v1/"


def params_text(value: Any, level: int = 0) -> str:
    """The params as Crypto.com signs them (its documentation's `params_to_str`, depth 3)."""
    if level >= 3:
        return str(value)
    if isinstance(value, Mapping):
        out = []
        for name in sorted(value):
            item = value[name]
            out.append(str(name))
            if item is None:
                out.append("None")
            elif isinstance(item, list):
                out.extend(params_text(v, level + 1) for v in item)
            else:
                out.append(str(item))
        return "".join(out)
    if isinstance(value, list):
        return "".join(params_text(v, level + 1) for v in value)
    return str(value)


def crypto_com_signature(
    secret: str, method: str, request_id: str, api_key: str, params: Any, nonce: str
) -> str:
    """The `sig` Crypto.com expects for this request."""
    message = f"{method}{request_id}{api_key}{params_text(params)}{nonce}".encode()
    return hmac_digest(secret.encode(), message, "sha256").hex()


class CryptoComSandbox(ExchangeSandbox):
    exchange_id = "crypto_com"

    def routes(self) -> list[Route]:
        return [
            Route("POST", PREFIX + "private/user-balance", self._balance),
            Route("POST", PREFIX + "private/get-trades", self._trades),
            Route("POST", PREFIX + "private/get-transactions", self._transactions),
        ]

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return json_response({"code": 40401, "message": "Not found"}, 404)

    @staticmethod
    def _envelope(request: SandboxRequest) -> dict[str, Any] | None:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _error(self, request: SandboxRequest, code: int, message: str, status: int = 401) -> SandboxResponse:
        envelope = self._envelope(request) or {}
        return json_response(
            {
                "id": envelope.get("id", -1),
                "method": envelope.get("method", ""),
                "code": code,
                "message": message,
            },
            status,
        )

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return SandboxResponse(503, b"Service Unavailable", "text/plain")
        if key.scenario == "rate_limited":
            return self._error(request, 42901, "TOO_MANY_REQUESTS", 429)
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        envelope = self._envelope(request)
        if envelope is None:
            return self._error(request, 40001, "BAD_REQUEST", 400)
        method = str(envelope.get("method", ""))
        if PREFIX + method != request.path:
            return self._error(request, 40001, "BAD_REQUEST: method does not match the path", 400)
        nonce = envelope.get("nonce")
        try:
            nonce_ms = int(str(nonce))
        except ValueError:
            return self._error(request, 40102, "INVALID_NONCE")
        if abs(self.now_ms() - nonce_ms) > NONCE_WINDOW_MS:
            return self._error(request, 40102, "INVALID_NONCE")
        key = self.lookup(str(envelope.get("api_key", "")))
        if key is None or key.scenario == "revoked":
            return self._error(request, 40101, "UNAUTHORIZED")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        params = envelope.get("params") or {}
        expected = crypto_com_signature(
            key.api_secret, method, str(envelope.get("id", "")), key.api_key, params, str(nonce)
        )
        if not safe_equal(str(envelope.get("sig", "")).lower(), expected):
            return self._error(request, 40101, "UNAUTHORIZED")
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "ip_whitelist":
            return self._error(request, 40103, "IP_ILLEGAL")
        return None

    def _ok(self, request: SandboxRequest, result: object) -> SandboxResponse:
        envelope = self._envelope(request) or {}
        return json_response(
            {"id": envelope.get("id"), "method": envelope.get("method"), "code": 0, "result": result}
        )

    def _balance(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        positions = []
        if key.scenario != "empty_account":
            positions = [
                {
                    "instrument_name": "BTC",
                    "quantity": "0.5012",
                    "market_value": "12530",
                    "reserved_qty": "0",
                },
                {"instrument_name": "USD", "quantity": "1250", "market_value": "1250", "reserved_qty": "0"},
            ]
        total = "13780" if positions else "0"
        return self._ok(
            request,
            {
                "data": [
                    {
                        "total_available_balance": total,
                        "total_cash_balance": total,
                        "position_balances": positions,
                    }
                ]
            },
        )

    def _params(self, request: SandboxRequest) -> dict[str, Any]:
        params = (self._envelope(request) or {}).get("params") or {}
        return params if isinstance(params, dict) else {}

    def _window(self, request: SandboxRequest, book: HistoryBook) -> tuple[list[int], int] | SandboxResponse:
        params = self._params(request)
        try:
            end = int(params.get("end_time") or self.now_ms())
            start = int(params.get("start_time") or end - 86_400_000)
            limit = min(100, max(1, int(params.get("limit") or 100)))
        except (TypeError, ValueError):
            return self._error(request, 40003, "INVALID_REQUEST", 400)
        if end - start > 7 * 86_400_000:
            return self._error(request, 40003, "INVALID_REQUEST: window over 7 days", 400)
        rows = [i for i in range(book.size - 1, -1, -1) if start <= book.ts_ms(i) <= end]
        return rows, limit

    def _trades(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        book = self.history(key)
        window = self._window(request, book)
        if isinstance(window, SandboxResponse):
            return window
        rows, limit = window
        return self._ok(
            request,
            {
                "data": [
                    {"trade_id": str(i), "create_time": book.ts_ms(i), "instrument_name": "BTC_USD"}
                    for i in rows[:limit]
                ]
            },
        )

    def _transactions(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        book = self.history(key)
        window = self._window(request, book)
        if isinstance(window, SandboxResponse):
            return window
        rows, limit = window
        return self._ok(request, {"data": [_journal(book, i) for i in rows[:limit]]})


def _journal(book: HistoryBook, i: int) -> dict[str, object]:
    """Entry `i`: a USD deposit, then a trade's USD leg, alternating."""
    usd = book.amount(i, "usd", "50", "2500", 2)
    trade = i % 2 == 1
    return {
        "account_id": "00000000-0000-0000-0000-000000000000",
        "event_date": "",
        "journal_type": "TRADING" if trade else "DEPOSIT",
        "journal_id": str(book.number(i, "id", 10**12, 10**13 - 1) * 100 + i % 100),
        "transaction_qty": fixed(-usd if trade else usd, 2),
        "transaction_cost": fixed(usd, 2),
        "realized_pnl": "0",
        "instrument_name": "USD",
        "event_timestamp_ms": book.ts_ms(i),
        "event_timestamp_ns": str(book.ts_ms(i) * 1_000_000),
    }
