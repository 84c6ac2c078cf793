"""OKX v5 (reference/exchanges.md §6).

Signing (§6, derived vectors §12): `OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD +
requestPath(?query) + body))`, timestamp ISO 8601 UTC with milliseconds, passphrase sent as typed
(`OK-ACCESS-PASSPHRASE`).

Calls: `GET /api/v5/account/config` (perm "read_only,withdraw,trade", bound IPs), then together
`GET /api/v5/account/balance` and `GET /api/v5/account/bills-archive?limit=1` (last 3 months).

Regions: an OKX key lives on one site: www.okx.com (global), my.okx.com (EEA) or app.okx.com (US); the other
sites answer "API key doesn't exist". KeyMedic asks only the host it is configured for (`KEYMEDIC_OKX_URL`,
default www.okx.com), the one the sync uses, and does not probe the other regions itself: that would send the
user's signed credential to sites they did not choose and double the failed attempts. When the key is unknown
there, the fix names the regions so the user can pick the right OKX connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    FIX_IP,
    FIX_PASSPHRASE,
    FIX_READ,
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
    api_target,
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

__all__ = ["OkxAuth", "OkxClient", "sign", "timestamp", "ERRORS", "REGION_HOSTS"]

NAME: Final = "OKX"

REGION_HOSTS: Final[dict[str, str]] = {
    "global": "https://www.okx.com",
    "eea": "https://my.okx.com",
    "us": "https://app.okx.com",
}

_FIX_KEY_UNKNOWN: Final = (
    "OKX doesn't know this API key. Copy it again in full. An OKX key only works on the site where it was "
    "created: if you made it on OKX EEA (my.okx.com) or OKX US (app.okx.com), connect that OKX region "
    "instead; otherwise create a new read-only key."
)

# The map from OKX's authentication error codes (§6 "Errors", §14) to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    "50111": (failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),),
    "50119": (failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),),
    "50101": (
        failed(
            Item.KEY_KNOWN,
            "This is a demo-trading key. Create the key in your live OKX account, not under Demo Trading.",
        ),
    ),
    "50113": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "50105": (
        passed(Item.KEY_KNOWN),
        failed(Item.PASSPHRASE_OK, FIX_PASSPHRASE),
        undecided(Item.SECRET_OK, "OKX stopped at the passphrase, so the secret wasn't checked."),
    ),
    "50110": (passed(Item.KEY_KNOWN), failed(Item.NO_IP_RESTRICTION, FIX_IP)),
    "50100": (
        failed(
            Item.ACTIVATED,
            "OKX has frozen this key (OKX expires keys with trade or withdraw permission and no IP after 14 "
            "days unused). Create a new read-only key.",
        ),
    ),
    "50120": (passed(Item.KEY_KNOWN), failed(Item.READ_PERMISSION, FIX_READ)),
    "50114": (undecided(Item.KEY_KNOWN, 'OKX answered "Invalid authorization" without saying why.'),),
}

_CLOCK_CODES: Final = {"50102", "50112"}
_RATE_LIMIT_CODES: Final = {"50011", "50061"}
_SERVER_CODES: Final = {"50001", "50004", "50013", "50026"}


def timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds, `2020-12-08T09:08:57.715Z` (§6)."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def sign(secret: str, ts: str, method: str, request_path: str, body: str = "") -> str:
    """OKX's OK-ACCESS-SIGN (§6; derived vectors §12)."""
    message = ts + method.upper() + request_path + body
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


class OkxAuth(httpx.Auth):
    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, passphrase: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._passphrase = passphrase
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = timestamp()
        target = api_target(request, self._prefix)
        request.headers["OK-ACCESS-KEY"] = self._api_key
        request.headers["OK-ACCESS-SIGN"] = sign(
            self._secret.reveal(), ts, request.method, target, request.content.decode()
        )
        request.headers["OK-ACCESS-TIMESTAMP"] = ts
        request.headers["OK-ACCESS-PASSPHRASE"] = self._passphrase.reveal()
        request.headers["Content-Type"] = "application/json"
        yield request


def decode(response: httpx.Response) -> list[Any]:
    """`data` of a successful answer, or the error OKX's `code` means."""
    check_status(response, NAME)
    body = json_body(response, NAME)
    if not isinstance(body, dict) or "code" not in body:
        raise UnexpectedResponse(
            f"{NAME} answered with an unexpected shape", raw_code=f"HTTP {response.status_code}"
        )
    code, message = str(body["code"]), short(str(body.get("msg", "")))
    if code == "0":
        data = body.get("data")
        return data if isinstance(data, list) else []
    if code in _CLOCK_CODES:
        raise ClockSkew(f"{NAME} says KeyMedic's clock is off ({message})", raw_code=code)
    if code in _RATE_LIMIT_CODES:
        raise RateLimited(f"{NAME} is rate limiting requests", raw_code=code)
    if code in _SERVER_CODES:
        raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=code)
    if code in ERRORS:
        raise AuthRejected(code, message, ERRORS[code])
    raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({message})", raw_code=code)


class OkxClient(ExchangeClient):
    exchange = "okx"
    default_base_url = REGION_HOSTS["global"]
    needs_passphrase = True

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        if not _is_uuid(credentials.api_key):
            problems.append(
                "An OKX API key looks like 8-4-4-4-12 letters and digits separated by dashes (36 "
                "characters). Copy it again in full."
            )
        secret = credentials.api_secret.reveal()
        if not (len(secret) == 32 and _is_hex(secret)):
            problems.append(
                "An OKX secret key is 32 letters and digits (0-9, A-F); this one is "
                f"{len(secret)} characters. Copy it again in full."
            )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        assert self.credentials.passphrase is not None  # the format check requires it
        auth = OkxAuth(
            self.credentials.api_key, self.credentials.api_secret, self.credentials.passphrase, session.prefix
        )
        config = await session.call("GET", "/api/v5/account/config", auth=auth, decode=decode)
        if not config or not isinstance(config[0], dict):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape")
        findings.add(
            passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.PASSPHRASE_OK), passed(Item.ACTIVATED)
        )
        findings.add(*_config_outcomes(config[0]))

        activity: list[str] = []

        async def balance() -> None:
            rows = await session.call("GET", "/api/v5/account/balance", auth=auth, decode=decode)
            details = [d for row in rows if isinstance(row, dict) for d in row.get("details") or []]
            if any(positive(d.get("eq"), d.get("cashBal")) for d in details if isinstance(d, dict)):
                activity.append("a balance")

        async def bills() -> None:
            rows = await session.call(
                "GET", "/api/v5/account/bills-archive", auth=auth, decode=decode, params={"limit": "1"}
            )
            if rows:
                activity.append("account bills in the last 3 months")

        await settle_all(findings, [balance(), bills()])
        findings.add(
            activity_outcome(
                activity,
                "No balance and no bills in the last 3 months; OKX's API doesn't show older history in "
                "one call.",
            )
        )


def _config_outcomes(config: dict[str, Any]) -> Verdict:
    outcomes = []
    perm = config.get("perm")
    if isinstance(perm, str):
        perms = {p.strip() for p in perm.split(",") if p.strip()}
        outcomes.append(
            passed(Item.READ_PERMISSION) if "read_only" in perms else failed(Item.READ_PERMISSION, FIX_READ)
        )
        withdraw, trade = "withdraw" in perms, "trade" in perms
        if withdraw or trade:
            detail = "Permissions: " + perm
            if not config.get("ip"):
                detail += (
                    ". OKX expires keys with trade or withdraw permission and no IP after 14 days unused."
                )
            outcomes.append(
                failed(
                    Item.NO_TRADE_OR_WITHDRAW, fix_trade_or_withdraw(withdraw=withdraw, trade=trade), detail
                )
            )
        else:
            outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    ip = config.get("ip")
    if isinstance(ip, str):
        if ip.strip():
            outcomes.append(failed(Item.NO_IP_RESTRICTION, FIX_IP, detail="Bound IPs: " + ip))
        else:
            outcomes.append(passed(Item.NO_IP_RESTRICTION))
    return tuple(outcomes)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _is_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(_is_hex(p) for p in parts)
