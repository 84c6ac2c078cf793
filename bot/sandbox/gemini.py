"""Gemini (reference/exchanges.md §7, §1.3).

POST with the request in headers: `X-GEMINI-PAYLOAD` = base64(JSON with `request` = the path and `nonce`),
`X-GEMINI-SIGNATURE` = hex(HMAC-SHA384(secret, the base64 payload)), `X-GEMINI-APIKEY`. The sandbox's keys use
session nonces (not "time based"): each must be greater than the last one the key used. Errors are
`{"result": "error", "reason": "…", "message": "…"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from decimal import Decimal

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

__all__ = ["GeminiSandbox", "gemini_signature"]


def gemini_signature(secret: str, payload_b64: str) -> str:
    """The X-GEMINI-SIGNATURE for a base64 payload."""
    return hmac_digest(secret.encode(), payload_b64.encode(), "sha384").hex()


def _error(reason: str, message: str, status: int = 400) -> SandboxResponse:
    return json_response({"result": "error", "reason": reason, "message": message}, status)


class GeminiSandbox(ExchangeSandbox):
    exchange_id = "gemini"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v1/balances", self._balances),
            Route("POST", "/v1/roles", self._roles),
            Route("POST", "/v1/mytrades", self._my_trades),
            Route("POST", "/v1/transfers", self._transfers),
        ]

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return _error("EndpointNotFound", f"API entry point `{request.path}` not found", 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error(
                "Maintenance",
                "The Gemini Exchange is currently undergoing maintenance. Please check "
                "https://status.gemini.com/ for more information.",
                503,
            )
        if key.scenario == "rate_limited":
            return _error("RateLimit", "Requests were made too frequently", 429)
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        api_key = request.header("X-GEMINI-APIKEY")
        payload = request.header("X-GEMINI-PAYLOAD")
        signature = request.header("X-GEMINI-SIGNATURE")
        if not api_key:
            return _error("MissingApikeyHeader", "The X-GEMINI-APIKEY header was missing")
        if not payload:
            return _error("MissingPayloadHeader", "The X-GEMINI-PAYLOAD header was missing")
        if not signature:
            return _error("MissingSignatureHeader", "The X-GEMINI-SIGNATURE header was missing")
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _error("InvalidApiKey", "Invalid API key")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        if not safe_equal(signature.lower(), gemini_signature(key.api_secret, payload)):
            return _error("InvalidSignature", "InvalidSignature")
        try:
            data = json.loads(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            return _error("InvalidJson", "The JSON provided is invalid")
        if not isinstance(data, dict):
            return _error("InvalidJson", "The JSON provided is invalid")
        if "request" not in data:
            return _error("EndpointNotFound", "No endpoint was specified")
        if data["request"] != request.path:
            return _error(
                "EndpointMismatch",
                f"EndpointMismatch: payload request {data['request']!r} does not match {request.path!r}",
            )
        nonce = str(data.get("nonce", ""))
        if not nonce.isdigit():
            return _error(
                "InvalidNonce", "The nonce was not greater than the previously used nonce, or was not present"
            )
        last = self.last_nonce.get(key.api_key, 0)
        if int(nonce) <= last:
            return _error(
                "InvalidNonce", f"Out-of-sequence nonce <{nonce}> precedes previously used nonce <{last}>"
            )
        self.last_nonce[key.api_key] = int(nonce)
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        return None

    def _balances(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return json_response([])
        return json_response(
            [
                {
                    "type": "exchange",
                    "currency": "BTC",
                    "amount": "0.5012",
                    "available": "0.5012",
                    "availableForWithdrawal": "0.5012",
                },
                {
                    "type": "exchange",
                    "currency": "USD",
                    "amount": "1250.00",
                    "available": "1250.00",
                    "availableForWithdrawal": "1250.00",
                },
            ]
        )

    def _roles(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Auditor (read-only) suits a tax sync; Trader is Gemini's default role, Fund Manager can withdraw.
        trader = key.scenario == "trading_enabled"
        fund_manager = key.scenario == "withdrawals_enabled"
        return json_response(
            {
                "counterparty_id": "SANDBOX0",
                "isAuditor": not (trader or fund_manager),
                "isFundManager": fund_manager,
                "isTrader": trader,
            }
        )

    def _my_trades(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # `limit_trades` (default 50, at most 500), `timestamp` (s or ms: the trades on or after it, oldest
        # first; without it the most recent), optional `symbol`; answered newest first.
        params = _payload(request)
        symbol = str(params.get("symbol", "")).upper()
        residues = _TRADE_ROWS if not symbol else tuple(r for r in _TRADE_ROWS if _SYMBOLS[r] == symbol)
        if symbol and not residues:
            return _error("InvalidSymbol", f"Invalid symbol: {symbol.lower()}")
        return self._page(key, params, "limit_trades", 50, 500, residues, _trade)

    def _transfers(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # `limit_transfers` (default 10, at most 50) and `timestamp`, as for trades.
        return self._page(key, _payload(request), "limit_transfers", 10, 50, (0,), _transfer)

    def _page(
        self,
        key: SandboxKey,
        params: dict[str, object],
        limit_name: str,
        default: int,
        maximum: int,
        residues: tuple[int, ...],
        render: Callable[[HistoryBook, int], dict[str, object]],
    ) -> SandboxResponse:
        try:
            limit = min(maximum, max(1, int(str(params.get(limit_name, default)))))
            since = int(str(params["timestamp"])) if "timestamp" in params else None
        except ValueError:
            return _error("InvalidParameter", f"{limit_name} or timestamp is not a number")
        book = self.history(key)
        if since is None:
            candidates = range(book.size - 1, -1, -1)
        else:
            # Gemini reads a small timestamp as seconds, a large one as milliseconds.
            since_ms = since if since > 10**11 else since * 1000
            candidates = range(book.first_at_or_after(since_ms), book.size)
        found = []
        for i in candidates:
            if i % _CYCLE in residues:
                found.append(i)
                if len(found) == limit:
                    break
        return json_response([render(book, i) for i in sorted(found, reverse=True)])


# History rows cycle through a transfer and three trades (BTCUSD, ETHUSD, BTCUSD).
_CYCLE = 4
_TRADE_ROWS = (1, 2, 3)
_SYMBOLS = {1: "BTCUSD", 2: "ETHUSD", 3: "BTCUSD"}


def _payload(request: SandboxRequest) -> dict[str, object]:
    """The JSON payload the request carries in X-GEMINI-PAYLOAD (already verified by `authenticate`)."""
    try:
        data = json.loads(base64.b64decode(request.header("X-GEMINI-PAYLOAD") or ""))
    except (binascii.Error, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _trade(book: HistoryBook, i: int) -> dict[str, object]:
    symbol = _SYMBOLS[i % _CYCLE]
    price = book.amount(i, "price", "20000", "65000", 2) / (1 if symbol == "BTCUSD" else 15)
    price = price.quantize(Decimal("0.01"))
    amount = book.amount(i, "qty", "0.001", "0.5") * (1 if symbol == "BTCUSD" else 10)
    ms = book.ts_ms(i)
    return {
        "price": fixed(price, 2),
        "amount": fixed(amount),
        "timestamp": ms // 1000,
        "timestampms": ms,
        "type": book.choice(i, "side", ("Buy", "Buy", "Sell")),
        "aggressor": True,
        "fee_currency": "USD",
        "fee_amount": fixed((price * amount * Decimal("0.004")).quantize(Decimal("0.01")), 2),
        "tid": 107_000_000 + i * 3,
        "order_id": str(106_000_000 + i * 3),
        "exchange": "gemini",
        "is_auction_fill": False,
        "is_clearing_fill": False,
        "symbol": symbol,
    }


def _transfer(book: HistoryBook, i: int) -> dict[str, object]:
    withdrawal = (i // _CYCLE) % 3 == 2
    currency = book.choice(i, "coin", ("BTC", "ETH")) if withdrawal else "USD"
    row: dict[str, object] = {
        "type": "Withdrawal" if withdrawal else "Deposit",
        "status": "Complete" if withdrawal else "Advanced",
        "timestampms": book.ts_ms(i),
        "eid": 320_000_000 + i * 7,
        "currency": currency,
        "amount": fixed(book.amount(i, "qty", "0.001", "0.05"))
        if withdrawal
        else fixed(book.amount(i, "usd", "100", "5000", 2), 2),
        "method": "Blockchain" if withdrawal else "ACH",
    }
    if withdrawal:
        row |= {"txHash": book.hex(i, "txid", 64), "feeAmount": "0.0001", "feeCurrency": currency}
    return row
