"""Bitstamp API v2 authentication (reference/exchanges.md §8, derived vector §12).

`X-Auth-Signature = hex(HMAC-SHA256(secret, "BITSTAMP " + key + METHOD + host + path + query + content type +
nonce + timestamp + "v2" + body))`. The nonce is a lowercase UUID4 used once within 150 s, the timestamp (ms)
must be within 150 s of the server. The host is the request's Host header (host:port in the sandbox).
Errors are HTTP 403 `{"status": "error", "reason": "…", "code": "API00xx"}`. Only API0004, API0005, API0011
and API0020 are sourced; the other numbers follow the order in which ccxt lists the reasons and are
unconfirmed (reference §15), so clients should match on `reason`, as ccxt does.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
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

__all__ = ["BitstampSandbox", "bitstamp_signature"]

WINDOW_S = 150.0
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_KEY_SHAPE = re.compile(r"^[A-Za-z0-9]{32}$")


def bitstamp_signature(
    key: str,
    secret: str,
    method: str,
    host: str,
    path: str,
    query: str,
    content_type: str,
    nonce: str,
    timestamp: str,
    body: str,
) -> str:
    """The X-Auth-Signature for this request."""
    message = f"BITSTAMP {key}{method.upper()}{host}{path}{query}{content_type}{nonce}{timestamp}v2{body}"
    return hmac_digest(secret.encode(), message.encode(), "sha256").hex()


def _error(reason: str, code: str, status: int = 403) -> SandboxResponse:
    return json_response({"status": "error", "reason": reason, "code": code}, status)


class BitstampSandbox(ExchangeSandbox):
    exchange_id = "bitstamp"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/api/v2/account_balances/", self._balances),
            Route("POST", "/api/v2/user_transactions/", self._user_transactions),
        ]

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return json_response({"status": "error", "reason": "Not found"}, 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return json_response({"status": "error", "reason": "Service unavailable"}, 503)
        if key.scenario == "rate_limited":
            return json_response(
                {
                    "status": "error",
                    "reason": "Request rejected due to exceeded rate limit",
                    "response_code": "400.002",
                },
                429,
            )
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        x_auth = request.header("X-Auth") or ""
        signature = request.header("X-Auth-Signature")
        nonce = request.header("X-Auth-Nonce")
        timestamp = request.header("X-Auth-Timestamp")
        if not (x_auth and signature and nonce):
            return _error("Missing key, signature and nonce parameters", "API0000")
        if not timestamp:
            return _error("X-Auth-Timestamp header is required", "API0015")
        if request.header("X-Auth-Version") != "v2":
            return _error("Invalid X-Auth-Version header", "API0016")
        api_key = x_auth.removeprefix("BITSTAMP ")
        if not x_auth.startswith("BITSTAMP ") or not _KEY_SHAPE.match(api_key):
            return _error("Wrong API key format", "API0011")
        content_type = request.header("Content-Type") or ""
        if content_type and not request.body:
            return _error("Content-Type header should not be present", "API0020")
        if not timestamp.isdigit() or abs(self.now_ms() - int(timestamp)) > WINDOW_S * 1000:
            return _error("X-Auth-Timestamp header is out of boundaries", "API0017")
        key = self.lookup(api_key)
        if key is None or key.scenario == "revoked":
            return _error("API key not found", "API0002")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        queries = {""} if not request.raw_query else {request.raw_query, "?" + request.raw_query}
        expected = [
            bitstamp_signature(
                key.api_key,
                key.api_secret,
                request.method,
                request.host,
                request.path,
                q,
                content_type,
                nonce,
                timestamp,
                request.text,
            )
            for q in queries
        ]
        if not any(safe_equal(signature.lower(), e) for e in expected):
            return _error("Invalid signature", "API0005")
        # A nonce is valid once, for 150 s (reference §8).
        now = self.now()
        used = self.used_nonces.setdefault(key.api_key, {})
        for old, expires in list(used.items()):
            if expires < now:
                del used[old]
        if not _UUID4.match(nonce) or nonce in used:
            return _error("Invalid nonce", "API0004")
        used[nonce] = now + WINDOW_S
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "ip_whitelist":
            return _error("IP address not allowed", "API0003")
        if key.scenario == "not_activated":
            return _error("Authentication failed", "API0008")
        return None

    def sign_response(
        self, request: SandboxRequest, key: SandboxKey, response: SandboxResponse
    ) -> SandboxResponse:
        """Add `X-Server-Auth-Signature` = hex(HMAC-SHA256(secret, nonce + timestamp + type + body))."""
        message = (
            (request.header("X-Auth-Nonce") or "")
            + (request.header("X-Auth-Timestamp") or "")
            + response.content_type
        ).encode() + response.body
        signature = hmac_digest(key.api_secret.encode(), message, "sha256").hex()
        return SandboxResponse(
            response.status,
            response.body,
            response.content_type,
            response.headers + (("X-Server-Auth-Signature", signature),),
            response.delay_s,
        )

    def _balances(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        rows = [("btc", "0.50120000"), ("eth", "2.00000000"), ("usd", "1250.00")]
        if key.scenario == "empty_account":
            rows = [(currency, "0.00") for currency, _ in rows]
        response = json_response(
            [{"currency": c, "total": amount, "available": amount, "reserved": "0.00"} for c, amount in rows]
        )
        return self.sign_response(request, key, response)

    def _user_transactions(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # `offset` (at most 200000), `limit` (default 100, at most 1000), `sort` desc (default) or asc
        # (reference/exchanges.md §8 "History").
        fields = dict(parse_qsl(request.text))
        try:
            offset = int(fields.get("offset", "0"))
            limit = int(fields.get("limit", "100"))
        except ValueError:
            return self.sign_response(request, key, _error("Invalid offset or limit", "API0009", 400))
        if not 0 <= offset <= 200_000 or not 1 <= limit <= 1000:
            return self.sign_response(request, key, _error("Invalid offset or limit", "API0009", 400))
        book = self.history(key)
        if fields.get("sort", "desc") == "asc":
            rows = range(offset, min(offset + limit, book.size))
        else:
            newest = book.size - 1 - offset
            rows = range(newest, max(newest - limit, -1), -1)
        return self.sign_response(request, key, json_response([_user_transaction(book, i) for i in rows]))


def _user_transaction(book: HistoryBook, i: int) -> dict[str, object]:
    """Row `i`: a cycle of a USD deposit, two market trades (BTC or ETH for USD) and a withdrawal."""
    when = datetime.fromtimestamp(book.ts_ms(i) / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    row: dict[str, object] = {"id": 200_000_000 + i * 17 + book.number(i, "id", 0, 16), "datetime": when}
    step = i % 4
    coin = book.choice(i, "coin", ("btc", "eth"))
    if step == 0:
        row |= {"type": "0", "fee": "0.00", "usd": fixed(book.amount(i, "usd", "100", "5000", 2), 2)}
    elif step == 3:
        qty = book.amount(i, "qty", "0.001", "0.05")
        row |= {"type": "1", "fee": "0.00050000", coin: fixed(-qty), "usd": "0.00"}
    else:
        usd = book.amount(i, "usd", "50", "2500", 2)
        price = (book.amount(i, "price", "20000", "65000", 2) / (1 if coin == "btc" else 15)).quantize(
            Decimal("0.01")
        )
        qty = (usd / price).quantize(Decimal("1E-8"))
        buy = book.choice(i, "side", ("buy", "buy", "sell")) == "buy"
        row |= {
            "type": "2",
            "fee": fixed((usd * Decimal("0.004")).quantize(Decimal("0.01")), 2),
            coin: fixed(qty if buy else -qty),
            "usd": fixed(-usd if buy else usd, 2),
            f"{coin}_usd": fixed(price, 2),
            "order_id": book.number(i, "order", 10**15, 10**16 - 1),
        }
    return row
