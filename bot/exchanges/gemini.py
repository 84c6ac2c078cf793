"""Gemini (reference/exchanges.md §7).

Signing (§1.3, §7): POST with an empty body; `X-GEMINI-PAYLOAD` = base64(JSON with `request` = the API path,
`nonce` and the parameters), `X-GEMINI-SIGNATURE` = hex(HMAC-SHA384(secret, that base64)). The nonce is
milliseconds, strictly increasing within the process (§0.2; Gemini's recommendation for session-nonce keys).

Calls, one after the other (Gemini rejects a nonce lower than the last one it saw): `POST /v1/roles`
(isAuditor/isTrader/isFundManager; no IP information), then `POST /v1/transfers` (deposits/withdrawals, newest
first) and, only when there are none, `POST /v1/balances`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
    MillisNonce,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    Verdict,
    api_target,
    failed,
    fix_trade_or_withdraw,
    passed,
    positive,
    short,
    undecided,
)
from bot.exchanges._http import Session, check_status, json_body
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = ["GeminiAuth", "GeminiClient", "encode_payload", "sign", "next_nonce", "ERRORS"]

NAME: Final = "Gemini"

next_nonce = MillisNonce()

_FIX_READ: Final = (
    "This key has no role that can read your history. Create a new Gemini key with the Auditor role "
    "(read-only)."
)

# The map from Gemini's error `reason` (§7 "Errors", §14) to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    "InvalidApiKey": (
        failed(
            Item.KEY_KNOWN,
            "Gemini doesn't know this API key: it may be incomplete, or it was deleted. Copy it again in "
            "full, or create a new key with the Auditor role.",
        ),
    ),
    "InvalidSignature": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "MissingRole": (passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), failed(Item.READ_PERMISSION, _FIX_READ)),
}

_CLOCK_REASONS: Final = {"InvalidNonce", "InvalidTimestampInPayload"}
_SERVER_REASONS: Final = {"Maintenance", "System"}


def encode_payload(payload: bytes) -> str:
    """X-GEMINI-PAYLOAD: the base64 of the JSON payload bytes (§1.3)."""
    return base64.b64encode(payload).decode()


def sign(secret: str, encoded_payload: str) -> str:
    """X-GEMINI-SIGNATURE: hex(HMAC-SHA384(secret, base64 payload)) (§1.3; the published vector pins it)."""
    return hmac.new(secret.encode(), encoded_payload.encode(), hashlib.sha384).hexdigest()


class GeminiAuth(httpx.Auth):
    """Moves the JSON parameters into the signed payload header and sends an empty body."""

    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        params = json.loads(request.content) if request.content else {}
        payload = {
            "request": api_target(request, self._prefix, with_query=False),
            "nonce": next_nonce(),
            **params,
        }
        encoded = encode_payload(json.dumps(payload).encode())
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() not in ("content-length", "content-type")
        ]
        headers += [
            ("Content-Type", "text/plain"),
            ("Cache-Control", "no-cache"),
            ("X-GEMINI-APIKEY", self._api_key),
            ("X-GEMINI-PAYLOAD", encoded),
            ("X-GEMINI-SIGNATURE", sign(self._secret.reveal(), encoded)),
        ]
        yield httpx.Request(
            request.method, request.url, headers=headers, content=b"", extensions=request.extensions
        )


def decode(response: httpx.Response) -> Any:
    """The JSON answer, or what Gemini's error `reason` means."""
    check_status(response, NAME)
    body = json_body(response, NAME)
    if isinstance(body, dict) and body.get("result") == "error":
        reason, message = str(body.get("reason", "")), short(str(body.get("message", "")))
        if reason in _CLOCK_REASONS:
            raise ClockSkew(
                f"{NAME} rejected the nonce: another app using this key may send larger nonces ({message})",
                raw_code=reason,
            )
        if reason == "RateLimit":
            raise RateLimited(f"{NAME} is rate limiting requests", raw_code=reason)
        if reason in _SERVER_REASONS:
            raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=reason)
        if reason in ERRORS:
            raise AuthRejected(reason, message, ERRORS[reason])
        raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({message})", raw_code=reason)
    if response.status_code != 200:
        raise UnexpectedResponse(
            f"{NAME} answered HTTP {response.status_code}", raw_code=f"HTTP {response.status_code}"
        )
    return body


class GeminiClient(ExchangeClient):
    exchange = "gemini"
    default_base_url = "https://api.gemini.com"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        prefix, _, rest = key.partition("-")
        if prefix not in ("account", "master") or not rest.isalnum() or len(rest) < 16:
            problems.append(
                'A Gemini API key starts with "account-" followed by letters and digits. '
                "Copy it again in full."
            )
        if not (secret.isascii() and secret.isalnum() and len(secret) >= 24):
            problems.append("A Gemini API secret is about 28 letters and digits. Copy it again in full.")
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = GeminiAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        roles = await session.call("POST", "/v1/roles", auth=auth, decode=decode)
        if not isinstance(roles, dict):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape")
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.ACTIVATED))
        findings.add(*_role_outcomes(roles))
        findings.add(
            undecided(
                Item.NO_IP_RESTRICTION,
                "The key worked from KeyMedic's address, but " + DETAIL_IP_NOT_REPORTED,
                fix=FIX_IP,
            )
        )
        try:
            transfers = await session.call(
                "POST", "/v1/transfers", auth=auth, decode=decode, json_data={"limit_transfers": 1}
            )
            if isinstance(transfers, list) and transfers:
                findings.add(passed(Item.HAS_ACTIVITY, "Found deposits or withdrawals."))
                return
            balances = await session.call("POST", "/v1/balances", auth=auth, decode=decode)
        except AuthRejected as exc:
            findings.rejected(exc)
            return
        if isinstance(balances, list) and any(
            positive(b.get("amount")) for b in balances if isinstance(b, dict)
        ):
            findings.add(passed(Item.HAS_ACTIVITY, "Found a balance."))
        else:
            findings.add(
                failed(Item.HAS_ACTIVITY, FIX_NO_ACTIVITY, detail="No deposits, withdrawals or balances."),
                raw_code="transfers=[]",
            )


def _role_outcomes(roles: dict[str, Any]) -> Verdict:
    auditor, trader, fund_manager = (roles.get(k) is True for k in ("isAuditor", "isTrader", "isFundManager"))
    detail = "Roles: " + (
        ", ".join(
            n for n, on in (("Auditor", auditor), ("Trader", trader), ("Fund Manager", fund_manager)) if on
        )
        or "none"
    )
    outcomes = [
        passed(Item.READ_PERMISSION, detail)
        if auditor or trader
        else failed(Item.READ_PERMISSION, _FIX_READ, detail)
    ]
    if trader or fund_manager:
        outcomes.append(
            failed(
                Item.NO_TRADE_OR_WITHDRAW,
                fix_trade_or_withdraw(withdraw=fund_manager, trade=trader)
                + " On Gemini choose the Auditor role only.",
                detail,
            )
        )
    else:
        outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW, detail))
    return tuple(outcomes)
