"""Binance spot + /sapi, and Binance.US on the same protocol (reference/exchanges.md §5, §1.2).

HMAC keys: `signature = hex(HMAC-SHA256(secret, queryString + body))` over the parameters exactly as sent, the
`signature` parameter itself left out; header `X-MBX-APIKEY`. A request is inside the window when
`timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow` (default 5000, max 60000).
Errors are `{"code": -NNNN, "msg": "…"}`.
"""

from __future__ import annotations

import re
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


class BinanceSandbox(ExchangeSandbox):
    exchange_id = "binance"

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v3/account", self._account),
            Route("GET", "/sapi/v1/account/apiRestrictions", self._api_restrictions),
            Route("GET", "/api/v3/myTrades", self._my_trades),
            Route("GET", "/sapi/v1/capital/deposit/hisrec", self._deposits),
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
        return None

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
        symbol = dict(parse_qsl(request.raw_query)).get("symbol")
        if not symbol:
            return _error(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.", 400
            )
        if key.scenario == "empty_account":
            return json_response([])
        trade = {
            "symbol": symbol,
            "id": 28457,
            "orderId": 100234,
            "orderListId": -1,
            "price": "25000.00000000",
            "qty": "0.05000000",
            "quoteQty": "1250.00000000",
            "commission": "0.00005000",
            "commissionAsset": "BTC",
            "time": 1688464484178,
            "isBuyer": True,
            "isMaker": False,
            "isBestMatch": True,
        }
        return json_response([trade])

    def _deposits(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return json_response([])
        deposit = {
            "id": "769800519366885376",
            "amount": "0.5012",
            "coin": "BTC",
            "network": "BTC",
            "status": 1,
            "address": "bc1qsandboxsandboxsandboxsandboxsandbox0",
            "addressTag": "",
            "txId": "sandbox-deposit-0001",
            "insertTime": 1688000000000,
            "transferType": 0,
            "confirmTimes": "2/2",
            "unlockConfirm": 0,
            "walletType": 0,
        }
        return json_response([deposit])


class BinanceUsSandbox(BinanceSandbox):
    """Binance.US speaks the same protocol under its own host; only the keys differ."""

    exchange_id = "binance_us"
