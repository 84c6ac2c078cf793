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


def _error(*errors: str, status: int = 200) -> SandboxResponse:
    return json_response({"error": list(errors), "result": {}}, status)


def _ok(result: object) -> SandboxResponse:
    return json_response({"error": [], "result": result})


def _nonce_of(request: SandboxRequest) -> str | None:
    content_type = (request.header("Content-Type") or "").lower()
    if content_type.startswith("application/json"):
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return None
        nonce = data.get("nonce") if isinstance(data, dict) else None
        return None if nonce is None else str(nonce)
    fields = dict(parse_qsl(request.text, keep_blank_values=True))
    return fields.get("nonce")


class KrakenSandbox(ExchangeSandbox):
    exchange_id = "kraken"

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
        if key.scenario == "empty_account":
            return _ok({"ledger": {}, "count": 0})
        ledger = {
            "L4UESK-KG3EQ-UFO4T5": {
                "refid": "TJKLXX-PGMUI-4NTLXU",
                "time": 1688464484.1787,
                "type": "trade",
                "subtype": "",
                "aclass": "currency",
                "asset": "ZUSD",
                "amount": "-1250.0000",
                "fee": "2.5000",
                "balance": "1250.0000",
            },
            "LMKZCZ-Z3GVL-CXKK4H": {
                "refid": "TJKLXX-PGMUI-4NTLXU",
                "time": 1688464484.1787,
                "type": "trade",
                "subtype": "",
                "aclass": "currency",
                "asset": "XXBT",
                "amount": "0.0500000000",
                "fee": "0.0000000000",
                "balance": "0.5012000000",
            },
        }
        return _ok({"ledger": ledger, "count": len(ledger)})
