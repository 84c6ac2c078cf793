"""Bitstamp API v2 (reference/exchanges.md §8).

Signing (§8, derived vector §12): `X-Auth-Signature = hex(HMAC-SHA256(secret, "BITSTAMP " + key + METHOD +
host + path + query + content type + nonce + timestamp + "v2" + body))`, nonce a lowercase UUID4, timestamp in
ms; the content type is sent (and signed) only with a body. The host is the one of the base URL in use.

Calls: one `POST /api/v2/user_transactions/` with `limit=1`: it settles key, secret and the "User
transactions" permission, and whether the account has any history (the list covers all of it, newest first).
Bitstamp has no endpoint that reports a key's permissions or IP list (§8), so those items stay unknown. A new
key works only after its e-mail activation link is clicked (§0.7); Bitstamp's wording for an inactive key is
unconfirmed, so "Authentication failed" leaves activation as a question for the user. Errors are matched on
`reason`, as ccxt does, since most `API00xx` numbers are unconfirmed (§8, §15).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Generator
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    DETAIL_IP_NOT_REPORTED,
    FIX_IP,
    FIX_NO_ACTIVITY,
    FIX_SECRET,
    AuthRejected,
    ClockSkew,
    ExchangeClient,
    Findings,
    RateLimited,
    UnexpectedResponse,
    Verdict,
    api_target,
    failed,
    passed,
    short,
    undecided,
)
from bot.exchanges._http import Session, check_status, json_body
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = ["BitstampAuth", "BitstampClient", "sign", "ERRORS"]

NAME: Final = "Bitstamp"
FORM: Final = "application/x-www-form-urlencoded"

_FIX_KEY_UNKNOWN: Final = (
    "Bitstamp doesn't know this API key: it may be incomplete, or it was deleted. Copy it again in full, or "
    "create a new key with only Account balance and User transactions permissions."
)

# The map from Bitstamp's error `reason` (§8 "Errors", ccxt's reason list, §14) to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    "API key not found": (failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),),
    "Wrong API key format": (failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),),
    "Invalid signature": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "IP address not allowed": (passed(Item.KEY_KNOWN), failed(Item.NO_IP_RESTRICTION, FIX_IP)),
    "No permission found": (
        passed(Item.KEY_KNOWN),
        passed(Item.SECRET_OK),
        failed(
            Item.READ_PERMISSION,
            "This key can't read your transactions. Create a new Bitstamp key with the Account balance and "
            "User transactions permissions (and nothing else).",
        ),
    ),
    "Your account is frozen": (
        failed(Item.ACTIVATED, "Bitstamp says this account is frozen. Contact Bitstamp support first."),
    ),
    "Authentication failed": (
        undecided(
            Item.ACTIVATED,
            "Bitstamp refused the key without saying why; a new key that hasn't been activated is the usual "
            "cause.",
            fix="Open the e-mail Bitstamp sent when you created the key and click its activation link, then "
            "test again.",
        ),
        undecided(Item.KEY_KNOWN, 'Bitstamp answered "Authentication failed" without saying why.'),
        undecided(Item.SECRET_OK, 'Bitstamp answered "Authentication failed" without saying why.'),
    ),
}


def sign(
    api_key: str,
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
    """X-Auth-Signature (§8; derived vector §12)."""
    message = f"BITSTAMP {api_key}{method.upper()}{host}{path}{query}{content_type}{nonce}{timestamp}v2{body}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class BitstampAuth(httpx.Auth):
    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        nonce, timestamp = str(uuid.uuid4()), str(int(time.time() * 1000))
        body = request.content.decode()
        path, _, query = api_target(request, self._prefix).partition("?")
        content_type = FORM if body else ""
        if not body:
            # Bitstamp refuses a Content-Type without a body (API0020).
            request.headers.pop("Content-Type", None)
        request.headers["X-Auth"] = f"BITSTAMP {self._api_key}"
        request.headers["X-Auth-Signature"] = sign(
            self._api_key,
            self._secret.reveal(),
            request.method,
            request.url.netloc.decode("ascii"),
            path,
            f"?{query}" if query else "",
            content_type,
            nonce,
            timestamp,
            body,
        )
        request.headers["X-Auth-Nonce"] = nonce
        request.headers["X-Auth-Timestamp"] = timestamp
        request.headers["X-Auth-Version"] = "v2"
        yield request


def decode(response: httpx.Response) -> Any:
    """The JSON answer, or what Bitstamp's error `reason` means."""
    check_status(response, NAME)
    body = json_body(response, NAME)
    if isinstance(body, dict) and (body.get("status") == "error" or "error" in body):
        reasons = _reasons(body)
        code = str(body.get("code") or body.get("response_code") or (reasons[0] if reasons else "error"))
        text = short("; ".join(reasons))
        if code == "400.002" or any("rate limit" in r.lower() for r in reasons):
            raise RateLimited(f"{NAME} is rate limiting requests", raw_code=code)
        if any("timestamp" in r.lower() or r == "Invalid nonce" for r in reasons):
            raise ClockSkew(f"{NAME} says KeyMedic's clock is off ({text})", raw_code=code)
        for reason in reasons:
            if reason in ERRORS:
                raise AuthRejected(code, reason, ERRORS[reason])
        raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({text})", raw_code=code)
    if response.status_code != 200:
        raise UnexpectedResponse(
            f"{NAME} answered HTTP {response.status_code}", raw_code=f"HTTP {response.status_code}"
        )
    return body


def _reasons(body: dict[str, Any]) -> list[str]:
    # `reason` (or `error`) is a string, or a dict of field -> messages with "__all__" (ccxt's handle_errors).
    found: list[str] = []
    for value in (body.get("reason"), body.get("error")):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for messages in value.values():
                found += [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
    return found


class BitstampClient(ExchangeClient):
    exchange = "bitstamp"
    default_base_url = "https://www.bitstamp.net"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        for label, value in (
            ("API key", credentials.api_key),
            ("API secret", credentials.api_secret.reveal()),
        ):
            if not (len(value) == 32 and value.isascii() and value.isalnum()):
                problems.append(
                    f"A Bitstamp {label} is 32 letters and digits; this one is {len(value)} characters. "
                    "Copy it again in full."
                )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = BitstampAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        rows = await session.call(
            "POST", "/api/v2/user_transactions/", auth=auth, decode=decode, data={"limit": "1"}
        )
        if not isinstance(rows, list):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape")
        findings.add(
            passed(Item.KEY_KNOWN),
            passed(Item.SECRET_OK),
            passed(Item.ACTIVATED),
            passed(Item.READ_PERMISSION),
            undecided(
                Item.NO_TRADE_OR_WITHDRAW,
                "Bitstamp doesn't report a key's permissions.",
                fix="Check the key has only Account balance and User transactions ticked; if Withdrawals or "
                "trading permissions are on, create a new key without them.",
            ),
            undecided(
                Item.NO_IP_RESTRICTION,
                "The key worked from KeyMedic's address, but " + DETAIL_IP_NOT_REPORTED,
                fix=FIX_IP,
            ),
        )
        if rows:
            findings.add(passed(Item.HAS_ACTIVITY, "Found transactions."))
        else:
            findings.add(
                failed(Item.HAS_ACTIVITY, FIX_NO_ACTIVITY, detail="Bitstamp lists no transactions."),
                raw_code="[]",
            )
