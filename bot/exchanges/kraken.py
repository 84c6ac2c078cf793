"""Kraken spot REST (reference/exchanges.md §3).

Signing (§1.1, §3): `API-Sign = base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + POST data)))`,
POST form bodies with `nonce` first, headers `API-Key` / `API-Sign`. The nonce is milliseconds since the
epoch, strictly increasing within the process: the production scheme (§0.2), so testing a key never pushes
its nonce above what the sync job sends.

Calls: `GetApiKeyInfo` (needs no permission; settles key, secret, withdraw/trade permissions and the IP
allowlist in one answer), then `Ledgers` (needs "Query Ledger Entries"; its `count` says whether the account
has any history). They run one after the other, because Kraken rejects a nonce lower than one it has already
accepted and two concurrent requests may arrive out of order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Generator
from functools import partial
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    DETAIL_IP_NOT_REPORTED,
    FIX_IP,
    FIX_NO_ACTIVITY,
    FIX_READ,
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
    short,
    undecided,
)
from bot.exchanges._http import Session, check_status, json_body
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = ["KrakenAuth", "KrakenClient", "sign", "next_nonce", "ERRORS"]

NAME: Final = "Kraken"

_FIX_KEY_UNKNOWN: Final = (
    "Kraken doesn't recognise this API key: it may be incomplete, or it was deleted or revoked on Kraken. "
    "Copy the key again in full, or create a new read-only key."
)
_FIX_READ: Final = (
    FIX_READ + " On Kraken turn on Query Funds, Query Ledger Entries and Query Closed Orders & Trades."
)

# The map from Kraken's authentication errors (§3 "Errors", §14) to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    # Missing, malformed, deleted or revoked key. A wrong secret is reported as "Invalid signature"; community
    # code says it can surface here too (§3, UNCONFIRMED), so the secret stays undecided.
    "EAPI:Invalid key": (
        failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),
        undecided(Item.SECRET_OK, "Kraken stopped at the key, so the secret wasn't checked."),
    ),
    "EAPI:Invalid signature": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "EGeneral:Permission denied": (
        passed(Item.KEY_KNOWN),
        passed(Item.SECRET_OK),
        failed(Item.READ_PERMISSION, _FIX_READ),
    ),
    "EAuth:Account temporary disabled": (
        failed(
            Item.ACTIVATED,
            "Kraken has temporarily disabled this account. Contact Kraken support to restore it, then test "
            "the key again.",
        ),
    ),
    "EAuth:Account unconfirmed": (
        failed(
            Item.ACTIVATED,
            "Kraken says this account isn't confirmed yet. Finish Kraken's account verification, then test "
            "the key again.",
        ),
    ),
}

# GetApiKeyInfo needs no permission (§0.5), so "Permission denied" there is not about read access. Kraken's
# answer for a caller outside the key's IP allowlist is unconfirmed (§15); that is the likely reason.
_GATE_PERMISSION_DENIED: Final[Verdict] = (
    passed(Item.KEY_KNOWN),
    passed(Item.SECRET_OK),
    undecided(
        Item.NO_IP_RESTRICTION,
        "Kraken refused a call that needs no permission; an IP allowlist on the key is the likely cause.",
        fix=FIX_IP,
    ),
)

_RATE_LIMITS: Final = ("EAPI:Rate limit exceeded", "EGeneral:Too many requests", "EService:Throttled")
_SERVER_ERRORS: Final = ("EService:", "EGeneral:Internal error")

# -------------------------------------------------------------------------------------------- signing

# Milliseconds, strictly increasing within the process (reference §0.2).
next_nonce = MillisNonce()


def sign(secret_b64: str, uri_path: str, nonce: str, post_data: str) -> str:
    """Kraken's API-Sign (reference §1.1; the published vector pins it)."""
    digest = hashlib.sha256((nonce + post_data).encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), uri_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class KrakenAuth(httpx.Auth):
    """Adds `nonce` to the form body and signs it. Each send (and retry) gets a fresh nonce."""

    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        nonce = str(next_nonce())
        params = request.content.decode()
        post_data = f"nonce={nonce}&{params}" if params else f"nonce={nonce}"
        path = api_target(request, self._prefix, with_query=False)
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() not in ("content-length", "content-type")
        ]
        headers += [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("API-Key", self._api_key),
            ("API-Sign", sign(self._secret.reveal(), path, nonce, post_data)),
        ]
        # The body changes (the nonce goes in), so a new request replaces the unsigned one.
        yield httpx.Request(
            request.method,
            request.url,
            headers=headers,
            content=post_data.encode(),
            extensions=request.extensions,
        )


def decode(response: httpx.Response, *, gate: bool = False) -> dict[str, Any]:
    """Kraken's `result`, or the error its first `error` entry means (Kraken answers errors with HTTP 200)."""
    check_status(response, NAME)
    body = json_body(response, NAME)
    if not isinstance(body, dict):
        raise UnexpectedResponse(
            f"{NAME} answered with an unexpected shape", raw_code=f"HTTP {response.status_code}"
        )
    errors = body.get("error") or []
    if errors:
        code = str(errors[0])
        if code.startswith(_RATE_LIMITS):
            raise RateLimited(
                f"{NAME} is rate limiting this key", raw_code=code, retry_after_s=_throttled_until(code)
            )
        if code.startswith("EGeneral:Temporary lockout"):
            # Another attempt now would reset the lockout timer (§0.3): never retry, tell the user to wait.
            raise RateLimited(
                f"{NAME} has locked this key out for a while after failed attempts; wait about 15 minutes",
                raw_code=code,
                retry_after_s=900.0,
                retryable=False,
            )
        if code.startswith("EAPI:Invalid nonce"):
            raise ClockSkew(
                f"{NAME} rejected the nonce: another app using this key may send larger nonces than KeyMedic",
                raw_code=code,
            )
        if gate and code == "EGeneral:Permission denied":
            raise AuthRejected(code, code, _GATE_PERMISSION_DENIED)
        if code in ERRORS:
            raise AuthRejected(code, code, ERRORS[code])
        if code.startswith(_SERVER_ERRORS):
            raise ServerError(f"{NAME} reported a problem on its side", raw_code=code)
        raise UnexpectedResponse(f"{NAME} answered with an unexpected error: {short(code)}", raw_code=code)
    result = body.get("result")
    if response.status_code != 200 or not isinstance(result, dict):
        raise UnexpectedResponse(
            f"{NAME} answered with an unexpected shape", raw_code=f"HTTP {response.status_code}"
        )
    return result


def _throttled_until(code: str) -> float | None:
    # "EService: Throttled: 1700000000" carries the UNIX time the throttle ends (§3).
    tail = code.rsplit(":", 1)[-1].strip()
    return max(0.0, float(tail) - time.time()) if tail.isdigit() else None


# -------------------------------------------------------------------------------------------- the probe


def _permission_outcome(permissions: list[str]) -> tuple[bool, bool]:
    """(withdraw, trade) from GetApiKeyInfo's permission strings ("withdraw-funds", "modify-trades"; the
    Fast-API names "funds_withdraw", "trades_modify" are read the same way)."""
    names = [p.lower().replace("_", "-") for p in permissions]
    withdraw = any("withdraw" in p for p in names)
    trade = any(
        ("trade" in p or "order" in p)
        and "query" not in p
        and any(verb in p for verb in ("modify", "create", "cancel", "close"))
        for p in names
    )
    return withdraw, trade


class KrakenClient(ExchangeClient):
    exchange = "kraken"
    default_base_url = "https://api.kraken.com"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        if not _is_base64(secret):
            problems.append(
                "The Kraken private key isn't valid base64 (letters, digits, + and /, ending in ==). "
                "Copy the Private Key again in full."
            )
        elif len(base64.b64decode(secret)) != 64:
            problems.append(
                "The Kraken private key looks truncated: it should be 88 characters ending in ==. "
                "Copy it again in full."
            )
        if len(key) != 56 or not _is_base64_text(key):
            if len(key) == 88 and _is_base64(key):
                problems.append("The API key and private key look swapped: paste the shorter one as the key.")
            else:
                problems.append(
                    "The Kraken API key should be 56 characters (letters, digits, + and /). "
                    "Copy it again in full."
                )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = KrakenAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        info = await session.call(
            "POST", "/0/private/GetApiKeyInfo", auth=auth, decode=partial(decode, gate=True)
        )
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.ACTIVATED))
        findings.add(*_key_info_outcomes(info))
        try:
            ledgers = await session.call("POST", "/0/private/Ledgers", auth=auth, decode=decode)
        except AuthRejected as exc:
            if exc.raw_code == "EGeneral:Permission denied" and info.get("ipAllowlist"):
                # With an allowlist that leaves KeyMedic out, Kraken refuses every call that needs a
                # permission (§15: its wording for a blocked caller is unconfirmed), so this says nothing
                # about read access.
                findings.add(
                    undecided(
                        Item.READ_PERMISSION,
                        "Kraken refused the read because of the key's IP allowlist, so read access couldn't "
                        "be checked.",
                    ),
                    raw_code=exc.raw_code,
                )
                return
            findings.rejected(exc)
            return
        findings.add(passed(Item.READ_PERMISSION))
        count = ledgers.get("count")
        if not isinstance(count, int):
            count = len(ledgers.get("ledger") or {})
        if count > 0:
            findings.add(passed(Item.HAS_ACTIVITY, f"{count} ledger entries."))
        else:
            window = ""
            if info.get("queryFrom") or info.get("queryTo"):
                window = (
                    " The key only sees a limited time window (its query start/end dates), which may hide"
                    " older entries."
                )
            findings.add(
                failed(Item.HAS_ACTIVITY, FIX_NO_ACTIVITY, detail="Kraken lists 0 ledger entries." + window),
                raw_code="count=0",
            )


def _key_info_outcomes(info: dict[str, Any]) -> Verdict:
    outcomes = []
    permissions = info.get("permissions")
    if isinstance(permissions, list):
        withdraw, trade = _permission_outcome([str(p) for p in permissions])
        if withdraw or trade:
            outcomes.append(
                failed(
                    Item.NO_TRADE_OR_WITHDRAW,
                    fix_trade_or_withdraw(withdraw=withdraw, trade=trade),
                    detail="Permissions: " + ", ".join(str(p) for p in permissions),
                )
            )
        else:
            outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    else:
        outcomes.append(undecided(Item.NO_TRADE_OR_WITHDRAW, "Kraken didn't list the key's permissions."))
    allowlist = info.get("ipAllowlist")
    if isinstance(allowlist, list):
        outcomes.append(
            failed(Item.NO_IP_RESTRICTION, FIX_IP) if allowlist else passed(Item.NO_IP_RESTRICTION)
        )
    else:
        outcomes.append(undecided(Item.NO_IP_RESTRICTION, DETAIL_IP_NOT_REPORTED))
    return tuple(outcomes)


def _is_base64_text(text: str) -> bool:
    return bool(text) and all(c.isascii() and (c.isalnum() or c in "+/=") for c in text)


def _is_base64(text: str) -> bool:
    if not _is_base64_text(text) or len(text) % 4:
        return False
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
