"""Kraken spot REST (reference/exchanges.md §3, §1.1).

`API-Sign = base64(HMAC-SHA512(base64decode(secret), URI path + SHA256(nonce + POST data)))`, POST to
`/0/private/<Method>` with a form (or JSON) body that carries `nonce`. Every API error is HTTP 200 with
`{"error": ["EAPI:…"], "result": {}}`. The nonce must be strictly greater than the last one the key accepted.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from bot.sandbox._common import (
    ExchangeSandbox,
    PublicHandler,
    Route,
    SandboxRequest,
    SandboxResponse,
    json_response,
    safe_equal,
)
from bot.sandbox._history import HistoryBook, fixed
from bot.sandbox.scenarios import BLOCKED_IP, SandboxKey

__all__ = ["KrakenSandbox", "kraken_signature"]

_PERMISSIONS_READ = [
    "query-funds",
    "query-open-trades",
    "query-closed-trades",
    "query-ledger-entries",
    "export-data",
]


def kraken_signature(secret_b64: str, uri_path: str, nonce: str, post_data: str) -> str:
    """The API-Sign Kraken expects for this request."""
    digest = hashlib.sha256((nonce + post_data).encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), uri_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


# How long the `lockout` key stays locked after its last attempt (Kraken's support article: about 15 minutes).
LOCKOUT_S = 900.0


def _error(*errors: str, status: int = 200) -> SandboxResponse:
    return json_response({"error": list(errors), "result": {}}, status)


def _ok(result: object) -> SandboxResponse:
    return json_response({"error": [], "result": result})


def _fields(request: SandboxRequest) -> dict[str, str]:
    """The request's parameters, from its form body or (the newer API reference's style) its JSON body."""
    content_type = (request.header("Content-Type") or "").lower()
    if content_type.startswith("application/json"):
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(request.text, keep_blank_values=True))


def _nonce_of(request: SandboxRequest) -> str | None:
    content_type = (request.header("Content-Type") or "").lower()
    if content_type.startswith("application/json"):
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return None
        nonce = data.get("nonce") if isinstance(data, dict) else None
        return None if nonce is None else str(nonce)
    return _fields(request).get("nonce")


class KrakenSandbox(ExchangeSandbox):
    exchange_id = "kraken"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The `lockout` key's last attempt, per key.
        self.lockout_attempts: dict[str, float] = {}

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/0/private/Balance", self._balance),
            Route("POST", "/0/private/GetApiKeyInfo", self._api_key_info),
            Route("POST", "/0/private/Ledgers", self._ledgers),
        ]

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        return {("GET", "/0/public/Time"): self._time}

    def _time(self, request: SandboxRequest) -> SandboxResponse:
        now = int(self.now())
        return _ok({"unixtime": now, "rfc1123": email.utils.formatdate(now, usegmt=True)})

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return _error("EGeneral:Unknown method", status=404)

    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        if key.scenario == "down":
            return _error("EService:Unavailable", status=503)
        if key.scenario == "rate_limited":
            return _error("EAPI:Rate limit exceeded")
        return None

    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        key = self.lookup(request.header("API-Key") or "")
        if key is not None and key.scenario == "lockout":
            return self._lockout(key)
        if key is None or key.scenario == "revoked":
            return _error("EAPI:Invalid key")
        fault = self.fault(request, key)
        if fault is not None:
            return fault
        nonce = _nonce_of(request)
        if nonce is None or not nonce.isdigit():
            return _error("EAPI:Invalid nonce")
        try:
            expected = kraken_signature(key.api_secret, request.path, nonce, request.text)
            given = base64.b64encode(
                base64.b64decode(request.header("API-Sign") or "", validate=True)
            ).decode()
        except (binascii.Error, ValueError):
            return _error("EAPI:Invalid signature")
        if not safe_equal(given, expected):
            return _error("EAPI:Invalid signature")
        # Kraken: "EAPI:Invalid nonce ... less than or equal to the last accepted nonce" (nonce window 0).
        if int(nonce) <= self.last_nonce.get(key.api_key, 0):
            return _error("EAPI:Invalid nonce")
        self.last_nonce[key.api_key] = int(nonce)
        return key

    def _lockout(self, key: SandboxKey) -> SandboxResponse:
        # Kraken locks a key out after repeated failed attempts, and "each attempt resets the timer"
        # (reference §0.3). The `lockout` key plays it at its sharpest: its first attempt is refused as an
        # invalid key; any attempt within LOCKOUT_S of the last one gets the lockout and restarts the clock.
        now = self.now()
        last = self.lockout_attempts.get(key.api_key)
        self.lockout_attempts[key.api_key] = now
        if last is not None and now - last < LOCKOUT_S:
            return _error("EGeneral:Temporary lockout")
        return _error("EAPI:Invalid key")

    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        # GetApiKeyInfo needs no permission and reports the allowlist; Kraken's wording for a blocked
        # caller is unconfirmed (reference §15), so the other endpoints answer the generic permission error.
        if key.scenario == "ip_whitelist" and request.path != "/0/private/GetApiKeyInfo":
            return _error("EGeneral:Permission denied")
        return None

    def _balance(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        if key.scenario == "empty_account":
            return _ok({})
        return _ok({"XXBT": "0.5012000000", "XETH": "2.0000000000", "ZUSD": "1250.0000"})

    def _api_key_info(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        permissions = list(_PERMISSIONS_READ)
        if key.scenario == "withdrawals_enabled":
            permissions.append("withdraw-funds")
        if key.scenario == "trading_enabled":
            permissions += ["modify-trades", "cancel-close-trades"]
        return _ok(
            {
                "apiKeyName": f"keymedic-sandbox-{key.scenario}",
                "apiKey": key.api_key,
                "nonce": str(self.last_nonce.get(key.api_key, 0)),
                "nonceWindow": 0,
                "permissions": permissions,
                "iban": "AA00 N84G KBPM XS5O",
                "validUntil": "0",
                "queryFrom": "0",
                "queryTo": "0",
                "createdTime": "1700000000",
                "modifiedTime": "1700000000",
                "ipAllowlist": [BLOCKED_IP] if key.scenario == "ip_whitelist" else [],
                "lastUsed": str(int(self.now())),
            }
        )

    def _ledgers(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse:
        # Kraken: 50 entries a page, newest first, `ofs` skips that many, `count` is the total unless
        # `without_count` (reference/exchanges.md §3 "History").
        fields = _fields(request)
        raw_offset = fields.get("ofs", "0") or "0"
        if not raw_offset.isdigit():
            return _error("EGeneral:Invalid arguments:ofs")
        book = self.history(key)
        newest = book.size - 1 - int(raw_offset)
        ledger = dict(_ledger_entry(book, i) for i in range(newest, max(newest - LEDGER_PAGE, -1), -1))
        result: dict[str, object] = {"ledger": ledger}
        if fields.get("without_count", "").lower() not in ("true", "1"):
            result["count"] = book.size
        return _ok(result)


LEDGER_PAGE = 50
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _kraken_id(book: HistoryBook, i: int, what: str, first: str) -> str:
    # Kraken ids look like L4UESK-KG3EQ-UFO4T5: a letter for the record type, then base32.
    number = int.from_bytes(book.digest(i, what)[:10], "big")
    chars = [first]
    for _ in range(16):
        number, rest = divmod(number, 32)
        chars.append(_BASE32[rest])
    text = "".join(chars)
    return f"{text[:6]}-{text[6:11]}-{text[11:]}"


def _ledger_entry(book: HistoryBook, i: int) -> tuple[str, dict[str, object]]:
    """Ledger row `i`: a cycle of a USD deposit, two trades (USD spent, crypto received: two rows each, one
    `refid`) and a crypto withdrawal."""
    step = i % 6
    # Both rows of a trade carry the trade's time.
    time_s = round(book.ts_ms(i - 1 if step in (2, 4) else i) / 1000, 4)
    if step == 0:
        kind, asset, amount, fee = (
            "deposit",
            "ZUSD",
            fixed(book.amount(i, "usd", "100", "5000", 2), 4),
            "0.0000",
        )
        refid = _kraken_id(book, i, "ref", "F")
    elif step == 5:
        asset = book.choice(i, "coin", ("XXBT", "XETH"))
        kind, amount = "withdrawal", fixed(-book.amount(i, "qty", "0.001", "0.05", 8), 10)
        fee = "0.0001000000" if asset == "XXBT" else "0.0025000000"
        refid = _kraken_id(book, i, "ref", "A")
    else:
        first = i if step in (1, 3) else i - 1
        usd = book.amount(first, "usd", "50", "2500", 2)
        coin = book.choice(first, "coin", ("XXBT", "XETH"))
        price = book.amount(first, "price", "20000", "65000", 1) / (1 if coin == "XXBT" else 15)
        refid = _kraken_id(book, first, "trade", "T")
        kind = "trade"
        if i == first:
            asset, amount, fee = (
                "ZUSD",
                fixed(-usd, 4),
                fixed((usd * Decimal("0.0026")).quantize(Decimal("0.0001")), 4),
            )
        else:
            asset, amount, fee = coin, fixed((usd / price).quantize(Decimal("1E-10")), 10), "0.0000000000"
    entry = {
        "refid": refid,
        "time": time_s,
        "type": kind,
        "subtype": "",
        "aclass": "currency",
        "asset": asset,
        "amount": amount,
        "fee": fee,
        "balance": fixed(book.amount(i, "balance", "0", "10000", 4), 4),
    }
    return _kraken_id(book, i, "ledger", "L"), entry
