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

from bot.sandbox._common import (
    ExchangeSandbox,
    Route,
    SandboxRequest,
    SandboxResponse,
    hmac_digest,
    json_response,
    safe_equal,
)
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
        if key.scenario == "empty_account":
            return json_response([])
        trade = {
            "price": "25000.00",
            "amount": "0.05",
            "timestamp": 1688464484,
            "timestampms": 1688464484178,
            "type": "Buy",
            "aggressor": True,
            "fee_currency": "USD",
            "fee_amount": "2.50",
            "tid": 107317526,
            "order_id": "107317524",
            "exchange": "gemini",
            "is_auction_fill": False,
            "symbol": "BTCUSD",
        }
        return json_response([trade])

    def _transfers(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return json_response([])
        transfer = {
            "type": "Deposit",
            "status": "Advanced",
            "timestampms": 1688000000000,
            "eid": 320013281,
            "currency": "BTC",
            "amount": "0.5012",
            "method": "Blockchain",
            "txHash": "sandbox-deposit-0001",
        }
        return json_response([transfer])
