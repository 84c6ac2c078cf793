"""Crypto.com Exchange v1 (reference/exchanges.md §10).

Signing (§10, derived vector §12): POST JSON `{id, method, api_key, params, nonce, sig}` to
`/exchange/v1/<method>`, `sig = hex(HMAC-SHA256(secret, method + id + api_key + paramString + nonce))`,
paramString = the params sorted by key, each key followed by its value, lists flattened (depth 3, as the
official example and ccxt do). The nonce is milliseconds and is only checked against the server clock
(±60 s), so testing a key cannot disturb the user's other clients.

Calls: `private/user-balance` (settles key and secret, and read access: Crypto.com keys can always read),
then `private/get-trades` for activity when there is no balance. Crypto.com reports neither a key's
permissions nor its IP whitelist (§0.5): those items are "can't tell" unless an error says so (40103).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Generator, Mapping
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    DETAIL_IP_NOT_REPORTED,
    FIX_IP,
    FIX_NO_ACTIVITY,
    FIX_READ,
    AuthRejected,
    ClockSkew,
    ExchangeClient,
    Findings,
    MillisNonce,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    Verdict,
    failed,
    passed,
    positive,
    settle_all,
    short,
    undecided,
)
from bot.exchanges._http import Session, check_status, json_body
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = ["CryptoComAuth", "CryptoComClient", "sign", "param_string", "decode", "ERRORS", "API_PREFIX"]

NAME: Final = "Crypto.com"
API_PREFIX: Final = "/exchange/v1/"

_AMBIGUOUS: Final = (
    'Crypto.com answered "authentication failure" (40101), which it gives both for an unknown key and for '
    "a wrong secret."
)
_FIX_AUTH: Final = (
    "Copy the API key and the secret again in full, with no spaces; if the key was deleted, or you no longer "
    "have its secret, create a new read-only key."
)

# The map from Crypto.com's codes (§10 "Errors", §14) to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    "40101": (
        undecided(Item.KEY_KNOWN, _AMBIGUOUS, fix=_FIX_AUTH),
        undecided(Item.SECRET_OK, _AMBIGUOUS, fix=_FIX_AUTH),
    ),
    "40103": (passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), failed(Item.NO_IP_RESTRICTION, FIX_IP)),
    "40104": (
        passed(Item.KEY_KNOWN),
        passed(Item.SECRET_OK),
        failed(
            Item.READ_PERMISSION,
            FIX_READ + " Crypto.com also refuses API access for some account tiers; ask its support if the "
            "key has Can Read ticked.",
        ),
    ),
}

_CLOCK_CODES: Final = {"40102"}
_RATE_LIMIT_CODES: Final = {"42901"}

# Milliseconds, strictly increasing in the process; Crypto.com checks it only against its clock.
next_nonce = MillisNonce()


def param_string(params: object, level: int = 0) -> str:
    """The params as Crypto.com signs them: keys sorted, key+value concatenated, lists flattened."""
    if level >= 3:
        return str(params)
    if isinstance(params, str):
        return params
    if isinstance(params, Mapping):
        out = ""
        for key in sorted(params):
            value = params[key]
            out += str(key)
            if value is None:
                out += "None"
            elif isinstance(value, list):
                out += "".join(param_string(v, level + 1) for v in value)
            else:
                out += str(value)
        return out
    if isinstance(params, list):
        return "".join(param_string(v, level + 1) for v in params)
    return str(params)


def sign(
    secret: str, method: str, request_id: str, api_key: str, params: Mapping[str, Any], nonce: str
) -> str:
    """Crypto.com's `sig` (§10; derived vector §12)."""
    message = method + request_id + api_key + param_string(params) + nonce
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


_ids = itertools.count(1)


class CryptoComAuth(httpx.Auth):
    """Wraps the request's JSON params into Crypto.com's signed envelope."""

    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.path
        if self._prefix and path.startswith(self._prefix):
            path = path[len(self._prefix) :]
        method = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path.lstrip("/")
        params = json.loads(request.content or b"{}")
        nonce = next_nonce()
        request_id = next(_ids)
        envelope = {
            "id": request_id,
            "method": method,
            "api_key": self._api_key,
            "params": params,
            "nonce": nonce,
            "sig": sign(self._secret.reveal(), method, str(request_id), self._api_key, params, str(nonce)),
        }
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
        yield httpx.Request(
            "POST",
            request.url,
            headers=headers,
            content=json.dumps(envelope, separators=(",", ":")).encode(),
            extensions=request.extensions,
        )


def decode(response: httpx.Response) -> dict[str, Any]:
    """`result` of a successful answer, or the error Crypto.com's `code` means."""
    body: Any = None
    if response.status_code < 500:
        try:
            body = json_body(response, NAME)
        except UnexpectedResponse:
            body = None
    code = str(body.get("code")) if isinstance(body, dict) and "code" in body else ""
    message = short(str(body.get("message", ""))) if isinstance(body, dict) else ""
    if code in _RATE_LIMIT_CODES:
        raise RateLimited(f"{NAME} is rate limiting requests", raw_code=code)
    check_status(response, NAME)
    if body is None or not isinstance(body, dict) or not code:
        raise UnexpectedResponse(
            f"{NAME} answered with an unexpected shape", raw_code=f"HTTP {response.status_code}"
        )
    if code == "0":
        result = body.get("result")
        return result if isinstance(result, dict) else {}
    if code in _CLOCK_CODES:
        raise ClockSkew(f"{NAME} says KeyMedic's clock is off ({message})", raw_code=code)
    if code in ERRORS:
        raise AuthRejected(code, message, ERRORS[code])
    if code.startswith("5"):
        raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=code)
    raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({message})", raw_code=code)


class CryptoComClient(ExchangeClient):
    exchange = "crypto_com"
    default_base_url = "https://api.crypto.com"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        for label, value in (
            ("API key", credentials.api_key),
            ("secret key", credentials.api_secret.reveal()),
        ):
            if not (value.isascii() and value.isalnum()) or not 16 <= len(value) <= 64:
                problems.append(
                    f"A Crypto.com {label} is letters and digits only (about 22 characters); this one is "
                    f"{len(value)} characters. Copy it again in full."
                )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = CryptoComAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        balance = await session.call(
            "POST", API_PREFIX + "private/user-balance", auth=auth, decode=decode, json_data={}
        )
        findings.add(
            passed(Item.KEY_KNOWN),
            passed(Item.SECRET_OK),
            passed(Item.ACTIVATED),
            passed(Item.READ_PERMISSION),
            undecided(
                Item.NO_TRADE_OR_WITHDRAW,
                "Crypto.com doesn't report a key's permissions. Please check that only Can Read is ticked "
                "(no Can Trade, no Can Withdraw).",
            ),
            undecided(Item.NO_IP_RESTRICTION, DETAIL_IP_NOT_REPORTED),
        )
        rows = balance.get("data") or []
        if any(
            positive(p.get("quantity"), p.get("reserved_qty"))
            for r in rows
            if isinstance(r, dict)
            for p in r.get("position_balances") or []
            if isinstance(p, dict)
        ) or any(positive(r.get("total_cash_balance")) for r in rows if isinstance(r, dict)):
            findings.add(passed(Item.HAS_ACTIVITY, "Found a balance."))
            return
        found: list[bool] = []

        async def trades() -> None:
            body = await session.call(
                "POST", API_PREFIX + "private/get-trades", auth=auth, decode=decode, json_data={"limit": 1}
            )
            found.append(bool(body.get("data")))

        # settle_all records a refusal of this read as a finding: the key itself was accepted above.
        await settle_all(findings, [trades()])
        if any(found):
            findings.add(passed(Item.HAS_ACTIVITY, "Found trades."))
        else:
            findings.add(
                undecided(
                    Item.HAS_ACTIVITY,
                    "No balance and no trades in Crypto.com's recent window; older activity isn't visible in "
                    "one call.",
                    fix=FIX_NO_ACTIVITY,
                )
            )
