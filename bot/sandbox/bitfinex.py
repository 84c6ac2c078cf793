"""Bitfinex v2 (reference/exchanges.md §9, derived vector §12).

POST JSON to `/v2/auth/r/<…>` with `bfx-apikey`, `bfx-nonce` and `bfx-signature = hex(HMAC-SHA384(secret,
"/api/" + apiPath + nonce + body))`. The nonce must be strictly greater than the last one the key accepted
("nonce: small"), as on the exchange. Errors are `["error", <code>, "<message>"]` with HTTP 500.
"""

from __future__ import annotations

import json
from decimal import Decimal
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
from bot.sandbox._history import HistoryBook
from bot.sandbox.scenarios import SandboxKey

__all__ = ["BitfinexSandbox", "bitfinex_signature"]

MAX_LEDGER_LIMIT = 2500


def bitfinex_signature(secret: str, api_path: str, nonce: str, body: str) -> str:
    """The bfx-signature for this request; `api_path` is `v2/auth/r/…`."""
    return hmac_digest(secret.encode(), f"/api/{api_path}{nonce}{body}".encode(), "sha384").hex()


def _error(code: int, message: str, status: int = 500) -> SandboxResponse:
    return json_response(["error", code, message], status)


class BitfinexSandbox(ExchangeSandbox):
    exchange_id = "bitfinex"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v2/auth/r/permissions", self._permissions),
            Route("POST", "/v2/auth/r/wallets", self._wallets),
            Route("POST", "/v2/auth/r/ledgers/hist", self._ledgers),
        ]

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return _error(10020, "request: invalid", 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error(20060, "maintenance", 503)
        if key.scenario == "rate_limited":
            return json_response({"error": "ERR_RATE_LIMIT"}, 429)
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        api_key, nonce, sign = (request.header(h) or "" for h in ("bfx-apikey", "bfx-nonce", "bfx-signature"))
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _error(10100, "apikey: invalid")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        expected = bitfinex_signature(key.api_secret, request.path.lstrip("/"), nonce, request.text)
        if not safe_equal(sign.lower(), expected):
            return _error(10100, "apikey: digest invalid")
        if not nonce.isdigit() or int(nonce) <= self.last_nonce.get(key.api_key, 0):
            return _error(10114, "nonce: small")
        self.last_nonce[key.api_key] = int(nonce)
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        return None

    def _permissions(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        write = {"withdrawals_enabled": "withdraw", "trading_enabled": "orders"}.get(key.scenario)
        scopes = ["account", "history", "orders", "positions", "funding", "settings", "wallets", "withdraw"]
        return json_response([[s, 0 if s in ("withdraw",) else 1, 1 if s == write else 0] for s in scopes])

    def _wallets(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return json_response([])
        return json_response(
            [
                ["exchange", "BTC", 0.5012, 0, 0.5012, None, None],
                ["exchange", "USD", 1250, 0, 1250, None, None],
            ]
        )

    def _ledgers(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Newest first; `end` (ms, inclusive) and `limit` (≤ 2500, default 25).
        try:
            body: Any = json.loads(request.body or b"{}")
            end = int(body.get("end") or self.now_ms())
            limit = min(MAX_LEDGER_LIMIT, max(1, int(body.get("limit") or 25)))
        except (ValueError, AttributeError, TypeError):
            return _error(10020, "limit: invalid")
        book = self.history(key)
        rows = [i for i in range(book.size - 1, -1, -1) if book.ts_ms(i) <= end][:limit]
        return json_response([_ledger(book, i) for i in rows])


def _ledger(book: HistoryBook, i: int) -> list[object]:
    """Row `i`: a USD deposit, then an exchange (trade) leg, alternating."""
    usd = book.amount(i, "usd", "50", "2500", 2)
    trade = i % 2 == 1
    amount = float(-usd if trade else usd)
    description = "Exchange 0.01 BTC for USD @ 25000" if trade else "Deposit (USD) #" + str(i)
    return [
        book.number(i, "id", 10**9, 10**10 - 1) * 100 + i % 100,
        "USD",
        None,
        book.ts_ms(i),
        None,
        amount,
        float(book.amount(i, "balance", "0", "10000") + Decimal(0)),
        None,
        description,
    ]
