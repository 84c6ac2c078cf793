"""Binance and Binance.US spot + `/sapi` (reference/exchanges.md §5). `binance_us` is the same API on
`api.binance.us`.

Signing (§1.2, §5): HMAC keys sign `query string + body` (non-ASCII percent-encoded first) with
`hex(HMAC-SHA256(secret, …))`, sent as the last `signature` parameter with `timestamp` (ms) and `recvWindow`;
header `X-MBX-APIKEY`. Only system-generated (HMAC) keys are tested; RSA/Ed25519 keys are recognised by their
PEM secret and explained.

Calls: `GET /sapi/v1/account/apiRestrictions` (weight 1; ipRestrict, enableReading, enableWithdrawals, trading
flags), then together `GET /api/v3/account` (balances) and `GET /sapi/v1/capital/deposit/hisrec` (deposits of
the last 90 days). Binance has no "all my history" endpoint (§5), so an empty answer leaves activity unknown.
`-2015` means "invalid key, IP, or permissions" in one code (§0.4): those items stay unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Generator
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    FIX_IP,
    FIX_SECRET,
    AuthRejected,
    ClockSkew,
    ExchangeClient,
    Findings,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    Verdict,
    activity_outcome,
    failed,
    fix_trade_or_withdraw,
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

__all__ = ["BinanceAuth", "BinanceClient", "BinanceUsClient", "sign", "ERRORS"]

# Binance's own default is 5000 ms; a little more tolerates a slow network without hiding real clock skew
# (a clock ahead by more than 1 s is refused whatever the window, §5).
RECV_WINDOW_MS: Final = 10_000

_FIX_READ: Final = (
    "This key can't read your account. Edit the key on Binance's API Management page and keep only "
    '"Enable Reading" on, or create a new read-only key.'
)
_AMBIGUOUS: Final = (
    "Binance answers -2015 for three different causes: an unknown or deleted key, an IP whitelist that "
    "blocks KeyMedic, or a key without read permission. It doesn't say which."
)

# The map from Binance's authentication error codes (§5 "Errors", §14) to checklist items.
ERRORS: Final[dict[int, Verdict]] = {
    -2014: (
        failed(
            Item.KEY_KNOWN,
            "Binance says the API key's format is invalid. Copy the API key again in full: 64 letters and "
            "digits, no spaces.",
        ),
    ),
    -2008: (
        failed(
            Item.KEY_KNOWN,
            "Binance doesn't recognise this API key. Copy it again in full, or create a new read-only key.",
        ),
    ),
    -2015: (
        undecided(
            Item.KEY_KNOWN,
            _AMBIGUOUS,
            fix="If you deleted this key or aren't sure you copied it whole, create a new read-only key.",
        ),
        undecided(Item.SECRET_OK, "Binance stopped before checking the signature."),
        undecided(Item.READ_PERMISSION, _AMBIGUOUS, fix=_FIX_READ),
        undecided(Item.NO_IP_RESTRICTION, _AMBIGUOUS, fix=FIX_IP),
    ),
    -1022: (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    -1002: (undecided(Item.READ_PERMISSION, "Binance says the key isn't authorised for this request."),),
}

_RATE_LIMIT_CODES: Final = {-1003, -1015}
_SERVER_CODES: Final = {-1000, -1001, -1006, -1007, -1008}


def sign(secret: str, payload: str) -> str:
    """hex(HMAC-SHA256(secret, query string + body)) (reference §1.2; the published vectors pin it)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class BinanceAuth(httpx.Auth):
    """Appends `recvWindow`, `timestamp` and `signature` to the query; the body (if any) is signed too."""

    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret) -> None:
        self._api_key = api_key
        self._secret = api_secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        query = request.url.query.decode("ascii")
        stamped = f"recvWindow={RECV_WINDOW_MS}&timestamp={int(time.time() * 1000)}"
        query = f"{query}&{stamped}" if query else stamped
        signature = sign(self._secret.reveal(), query + request.content.decode())
        request.url = request.url.copy_with(query=f"{query}&signature={signature}".encode("ascii"))
        request.headers["X-MBX-APIKEY"] = self._api_key
        yield request


class BinanceClient(ExchangeClient):
    exchange = "binance"
    default_base_url = "https://api.binance.com"
    display_name = "Binance"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        if secret.lstrip().startswith("-----BEGIN"):
            return [
                "This secret is a private key file (a self-generated RSA or Ed25519 key). KeyMedic tests "
                'system-generated keys: create one with "System generated" and paste its 64-character secret.'
            ]
        problems = []
        if not (len(key) == 64 and key.isascii() and key.isalnum()):
            problems.append(
                f"A {cls.display_name} API key is 64 letters and digits; this one is {len(key)} characters. "
                "Copy it again in full."
            )
        if not (len(secret) == 64 and secret.isascii() and secret.isalnum()):
            problems.append(
                f"A {cls.display_name} secret key is 64 letters and digits; this one is {len(secret)} "
                "characters. Copy it again in full (it is shown only once; if it's gone, create a new key)."
            )
        return problems

    def decode(self, response: httpx.Response) -> Any:
        """The JSON answer, or the error Binance's `code` means."""
        name = self.display_name
        check_status(response, name)
        body = json_body(response, name)
        if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] < 0:
            code, message = body["code"], short(str(body.get("msg", "")))
            raw = str(code)
            if code == -1021:
                raise ClockSkew(f"{name} says KeyMedic's clock is off ({message})", raw_code=raw)
            if code in _RATE_LIMIT_CODES:
                raise RateLimited(f"{name} is rate limiting requests", raw_code=raw)
            if code in _SERVER_CODES:
                raise ServerError(f"{name} reported a problem on its side ({message})", raw_code=raw)
            if code in ERRORS:
                raise AuthRejected(raw, message, ERRORS[code])
            raise UnexpectedResponse(f"{name} answered with an unexpected error ({message})", raw_code=raw)
        if response.status_code != 200:
            raise UnexpectedResponse(
                f"{name} answered HTTP {response.status_code}", raw_code=f"HTTP {response.status_code}"
            )
        return body

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = BinanceAuth(self.credentials.api_key, self.credentials.api_secret)
        restrictions = await session.call(
            "GET", "/sapi/v1/account/apiRestrictions", auth=auth, decode=self.decode
        )
        if not isinstance(restrictions, dict):
            raise UnexpectedResponse(f"{self.display_name} answered with an unexpected shape")
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.ACTIVATED))
        findings.add(*_restriction_outcomes(restrictions))

        activity: list[str] = []

        async def balances() -> None:
            account = await session.call(
                "GET", "/api/v3/account", auth=auth, decode=self.decode, params={"omitZeroBalances": "true"}
            )
            held = [
                b for b in (account or {}).get("balances", []) if positive(b.get("free"), b.get("locked"))
            ]
            if held:
                activity.append(f"balances in {len(held)} assets")

        async def deposits() -> None:
            rows = await session.call("GET", "/sapi/v1/capital/deposit/hisrec", auth=auth, decode=self.decode)
            if isinstance(rows, list) and rows:
                activity.append("deposits in the last 90 days")

        await settle_all(findings, [balances(), deposits()])
        findings.add(
            activity_outcome(
                activity,
                f"No balances and no deposits in the last 90 days. {self.display_name} can't list an "
                "account's whole history in one call, so older activity may still exist.",
            )
        )


class BinanceUsClient(BinanceClient):
    exchange = "binance_us"
    default_base_url = "https://api.binance.us"
    display_name = "Binance.US"


_TRADE_FLAGS: Final = (
    "enableSpotAndMarginTrading",
    "enableMargin",
    "enableFutures",
    "enableVanillaOptions",
    "enablePortfolioMarginTrading",
    "enableFixApiTrade",
)


def _restriction_outcomes(restrictions: dict[str, Any]) -> Verdict:
    outcomes = []
    reading = restrictions.get("enableReading")
    if reading is True:
        outcomes.append(passed(Item.READ_PERMISSION))
    elif reading is False:
        outcomes.append(failed(Item.READ_PERMISSION, _FIX_READ))
    withdraw = restrictions.get("enableWithdrawals") is True
    trading = [flag for flag in _TRADE_FLAGS if restrictions.get(flag) is True]
    if withdraw or trading:
        on = (["enableWithdrawals"] if withdraw else []) + trading
        outcomes.append(
            failed(
                Item.NO_TRADE_OR_WITHDRAW,
                fix_trade_or_withdraw(withdraw=withdraw, trade=bool(trading)),
                detail="On: " + ", ".join(on),
            )
        )
    else:
        outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    ip_restrict = restrictions.get("ipRestrict")
    if ip_restrict is True:
        detail = (
            "Binance requires an IP restriction on keys with withdrawals enabled; a read-only key needs none."
            if withdraw
            else None
        )
        outcomes.append(failed(Item.NO_IP_RESTRICTION, FIX_IP, detail=detail))
    elif ip_restrict is False:
        outcomes.append(passed(Item.NO_IP_RESTRICTION))
    return tuple(outcomes)
