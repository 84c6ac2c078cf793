"""Coinbase Advanced Trade with CDP keys (reference/exchanges.md §2).

`Authorization: Bearer <JWT>`, ES256 (or EdDSA for an Ed25519 key, the CDP SDKs' other algorithm: its secret
is base64 of a 32-byte seed and the public key, and its JWT may carry `uris: [uri]`), header `kid` = key name
and a random `nonce`; claims `sub` = key name, `iss` (`cdp` in the current docs, `coinbase-cloud` in the
official SDK — both accepted), `nbf`, `exp` (at most two minutes later) and `uri` = `"GET host/path"` without
the query. The host is the request's Host header (host:port in the sandbox) and the path the un-prefixed API
path. Any authentication problem is a bare HTTP 401 `Unauthorized`, as Coinbase answers; legacy HMAC keys
(CB-ACCESS-* headers) were expired in February 2025 and get the same 401.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bot.sandbox._common import (
    ExchangeSandbox,
    PublicHandler,
    Route,
    SandboxRequest,
    SandboxResponse,
    json_response,
    text_response,
)
from bot.sandbox._history import HistoryBook, fixed
from bot.sandbox.scenarios import SandboxKey

__all__ = ["CoinbaseSandbox", "verify_coinbase_jwt", "CoinbaseAuthError"]

MAX_LIFETIME_S = 120
ISSUERS = ("cdp", "coinbase-cloud")


class CoinbaseAuthError(Exception):
    """Why a JWT was refused (the client only ever sees `401 Unauthorized`; this is for tests and logs)."""


@cache
def _public_key(secret: str) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    if "-----BEGIN" not in secret:
        # Ed25519: base64 of seed (32 bytes) then public key (32 bytes); the sandbox trusts the public half
        # it issued, so it reads that half directly.
        raw = base64.b64decode(secret)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw[32:])
    private = serialization.load_pem_private_key(secret.encode(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise TypeError("a Coinbase CDP secret is an EC private key")
    return private.public_key()


def verify_coinbase_jwt(token: str, key: SandboxKey, method: str, host: str, path: str, now: float) -> None:
    """Raise CoinbaseAuthError unless `token` is a valid CDP JWT of `key` for this request at time `now`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise CoinbaseAuthError(f"not a JWT: {exc}") from None
    algorithm = "ES256" if "-----BEGIN" in key.api_secret else "EdDSA"
    if header.get("alg") != algorithm:
        raise CoinbaseAuthError(f"alg {header.get('alg')!r} is not {algorithm}")
    if header.get("kid") != key.api_key:
        raise CoinbaseAuthError("kid is not the key name")
    if not header.get("nonce"):
        raise CoinbaseAuthError("header has no nonce")
    try:
        # exp/nbf are checked below against the sandbox's own clock, so tests can move it.
        claims: dict[str, Any] = jwt.decode(
            token,
            _public_key(key.api_secret),
            algorithms=[algorithm],
            options={"verify_exp": False, "verify_nbf": False, "verify_aud": False, "verify_iss": False},
        )
    except jwt.PyJWTError as exc:
        raise CoinbaseAuthError(f"signature: {exc}") from None
    if claims.get("sub") != key.api_key:
        raise CoinbaseAuthError("sub is not the key name")
    if claims.get("iss") not in ISSUERS:
        raise CoinbaseAuthError(f"iss {claims.get('iss')!r}")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int | float) or not isinstance(exp, int | float):
        raise CoinbaseAuthError("nbf and exp are required")
    if nbf > now:
        raise CoinbaseAuthError("not valid yet (nbf)")
    if exp <= now:
        raise CoinbaseAuthError("expired (exp)")
    if exp - nbf > MAX_LIFETIME_S:
        raise CoinbaseAuthError("lifetime longer than two minutes")
    expected_uri = f"{method.upper()} {host}{path}"
    uris = claims.get("uris")
    listed = isinstance(uris, list) and expected_uri in uris
    if claims.get("uri") != expected_uri and not listed:
        raise CoinbaseAuthError(f"uri {claims.get('uri')!r} is not {expected_uri!r}")


def _unauthorized() -> SandboxResponse:
    return text_response("Unauthorized\n", 401)


def _money(value: str, currency: str) -> dict[str, str]:
    return {"value": value, "currency": currency}


class CoinbaseSandbox(ExchangeSandbox):
    exchange_id = "coinbase"

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v3/brokerage/accounts", self._accounts),
            Route("GET", "/api/v3/brokerage/key_permissions", self._key_permissions),
            Route("GET", "/api/v3/brokerage/orders/historical/fills", self._fills),
        ]

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        return {("GET", "/api/v3/brokerage/time"): self._time}

    def _time(self, request: SandboxRequest) -> SandboxResponse:
        now = self.now()
        iso = datetime.fromtimestamp(now, timezone.utc).isoformat().replace("+00:00", "Z")
        return json_response({"iso": iso, "epochSeconds": str(int(now)), "epochMillis": str(int(now * 1000))})

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return text_response("404 page not found\n", 404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return json_response(
                {
                    "error": "UNAVAILABLE",
                    "error_details": "service unavailable",
                    "message": "service unavailable",
                },
                503,
            )
        if key.scenario == "rate_limited":
            return json_response(
                {"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}, 429
            )
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        authorization = request.header("Authorization") or ""
        if not authorization.startswith("Bearer "):
            return _unauthorized()
        token = authorization.removeprefix("Bearer ").strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return _unauthorized()
        key = self.lookup(kid) if isinstance(kid, str) else None
        if key is None or key.scenario == "revoked":
            return _unauthorized()
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        try:
            verify_coinbase_jwt(token, key, request.method, request.host, request.path, self.now())
        except CoinbaseAuthError:
            return _unauthorized()
        return key

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        # CDP keys can carry an IP allowlist; no endpoint reports it and a blocked caller gets the same 401.
        if key.scenario == "ip_whitelist":
            return _unauthorized()
        return None

    def _accounts(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        rows = [("BTC", "0.5012"), ("USD", "1250.00")]
        if key.scenario == "empty_account":
            rows = [(currency, "0") for currency, _ in rows]
        accounts = [
            {
                "uuid": f"00000000-0000-4000-8000-00000000000{i}",
                "name": f"{currency} Wallet",
                "currency": currency,
                "available_balance": _money(amount, currency),
                "default": True,
                "active": True,
                "created_at": "2023-07-01T00:00:00.000Z",
                "updated_at": "2023-07-04T09:54:44.178Z",
                "deleted_at": None,
                "type": "ACCOUNT_TYPE_CRYPTO" if currency != "USD" else "ACCOUNT_TYPE_FIAT",
                "ready": True,
                "hold": _money("0", currency),
                "retail_portfolio_id": "00000000-0000-4000-8000-6b65796d6564",
            }
            for i, (currency, amount) in enumerate(rows, start=1)
        ]
        return json_response({"accounts": accounts, "has_next": False, "cursor": "", "size": len(accounts)})

    def _key_permissions(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        return json_response(
            {
                "can_view": True,
                "can_trade": key.scenario == "trading_enabled",
                "can_transfer": key.scenario == "withdrawals_enabled",
                "portfolio_uuid": "00000000-0000-4000-8000-6b65796d6564",
                "portfolio_type": "DEFAULT",
            }
        )

    def _fills(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Newest first, `limit` a page (default 100, at most 1000), an opaque `cursor` to the next page that
        # is empty after the last one (reference/exchanges.md §2 "History").
        params = dict(parse_qsl(request.raw_query))
        try:
            limit = min(1000, max(1, int(params.get("limit", "100"))))
            offset = int(params.get("cursor") or "0")
        except ValueError:
            return json_response(
                {"error": "INVALID_ARGUMENT", "error_details": "invalid cursor", "message": "invalid cursor"},
                400,
            )
        book = self.history(key)
        newest = book.size - 1 - offset
        fills = [_fill(book, i) for i in range(newest, max(newest - limit, -1), -1)]
        more = offset + limit < book.size
        return json_response({"fills": fills, "cursor": str(offset + limit) if more else ""})


def _uuid(book: HistoryBook, i: int, what: str) -> str:
    text = book.hex(i, what, 32)
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-8{text[17:20]}-{text[20:]}"


def _fill(book: HistoryBook, i: int) -> dict[str, object]:
    """Fill `i`: a buy or sell of BTC, ETH or SOL for USD."""
    coin = book.choice(i, "coin", ("BTC", "ETH", "SOL"))
    price = book.amount(i, "price", "20000", "65000", 2) / {"BTC": 1, "ETH": 15, "SOL": 500}[coin]
    price = price.quantize(Decimal("0.01"))
    size = book.amount(i, "size", "0.001", "0.5", 8) * {"BTC": 1, "ETH": 10, "SOL": 100}[coin]
    when = datetime.fromtimestamp(book.ts_ms(i) / 1000, timezone.utc)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return {
        "entry_id": _uuid(book, i, "entry"),
        "trade_id": _uuid(book, i, "trade"),
        "order_id": _uuid(book, i, "order"),
        "trade_time": iso,
        "trade_type": "FILL",
        "price": fixed(price, 2),
        "size": fixed(size, 8),
        "commission": fixed((price * size * Decimal("0.006")).quantize(Decimal("0.01")), 2),
        "product_id": f"{coin}-USD",
        "sequence_timestamp": iso,
        "liquidity_indicator": book.choice(i, "liquidity", ("MAKER", "TAKER")),
        "size_in_quote": False,
        "user_id": "00000000-0000-4000-8000-6b65796d6564",
        "side": book.choice(i, "side", ("BUY", "BUY", "SELL")),
        "retail_portfolio_id": "00000000-0000-4000-8000-6b65796d6564",
    }
