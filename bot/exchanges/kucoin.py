"""KuCoin spot (reference/exchanges.md §4).

Signing (§4, derived vector §12): `KC-API-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD +
endpoint(?query) + body))`, timestamp in ms; for key versions 2 and 3 the passphrase header is
`base64(HMAC-SHA256(secret, passphrase))`, for version 1 the plain passphrase. `KC-API-KEY-VERSION`
says which.

Key version: the user can give it (`key_version`, shown on KuCoin's API Management page). Without it KeyMedic
sends "2", as ccxt and most clients do; KuCoin signs the passphrase the same way for 2 and 3, and a mismatch
would come back as `400009`, which is reported as a question for the user, never retried with another version
(no retry of an authentication error).

Calls: `GET /api/v1/user/api-key` (permission, ipWhitelist, apiVersion), then together `GET /api/v1/accounts`
(balances) and `GET /api/v1/accounts/ledgers` (recent entries, `totalNum`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Generator
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

__all__ = ["KucoinAuth", "KucoinClient", "sign", "sign_passphrase", "ERRORS", "DEFAULT_KEY_VERSION"]

NAME: Final = "KuCoin"
DEFAULT_KEY_VERSION: Final = "2"

_FIX_KEY_UNKNOWN: Final = (
    "KuCoin doesn't know this API key: it may be incomplete, or it was deleted. Copy it again in full, or "
    "create a new read-only key (General permission only)."
)
_FIX_READ: Final = FIX_READ + ' On KuCoin that is the "General" permission.'

# The map from KuCoin's gateway error codes (§4 "Errors", §14) to checklist items. The gateway's order of
# checks is not documented, so an item it stopped before stays undecided.
ERRORS: Final[dict[str, Verdict]] = {
    "400003": (failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),),
    "400004": (
        passed(Item.KEY_KNOWN),
        failed(Item.PASSPHRASE_OK, FIX_PASSPHRASE),
        undecided(Item.SECRET_OK, "KuCoin stopped at the passphrase, so the secret wasn't checked."),
    ),
    "400005": (
        passed(Item.KEY_KNOWN),
        failed(Item.SECRET_OK, FIX_SECRET),
        undecided(Item.PASSPHRASE_OK, "KuCoin stopped at the signature, so the passphrase wasn't checked."),
    ),
    "400006": (passed(Item.KEY_KNOWN), failed(Item.NO_IP_RESTRICTION, FIX_IP)),
    "400007": (
        passed(Item.KEY_KNOWN),
        passed(Item.SECRET_OK),
        passed(Item.PASSPHRASE_OK),
        failed(Item.READ_PERMISSION, _FIX_READ),
    ),
    "400010": (
        passed(Item.KEY_KNOWN),
        passed(Item.SECRET_OK),
        passed(Item.PASSPHRASE_OK),
        failed(Item.READ_PERMISSION, _FIX_READ),
    ),
    "400008": (
        failed(
            Item.KEY_KNOWN,
            "This is an old (version 1 or 2) KuCoin key, which KuCoin no longer accepts here. Create a new "
            "read-only key (version 3).",
        ),
    ),
    "400009": (
        undecided(
            Item.KEY_KNOWN,
            "KuCoin says the key version doesn't match.",
            fix="Check the key's version on KuCoin's API Management page (2 or 3) and enter it with the key.",
        ),
    ),
    "411100": (
        failed(
            Item.ACTIVATED,
            "KuCoin says this account is frozen. Contact KuCoin support to unfreeze it, then test the key "
            "again.",
        ),
    ),
}

_CLOCK_CODES: Final = {"400002"}
_RATE_LIMIT_CODES: Final = {"429000", "200002"}


def sign(secret: str, ts: str, method: str, endpoint: str, body: str = "") -> str:
    """KC-API-SIGN (§4; derived vector §12)."""
    message = ts + method.upper() + endpoint + body
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def sign_passphrase(secret: str, passphrase: str) -> str:
    """KC-API-PASSPHRASE for key versions 2 and 3 (§4)."""
    return base64.b64encode(hmac.new(secret.encode(), passphrase.encode(), hashlib.sha256).digest()).decode()


class KucoinAuth(httpx.Auth):
    requires_request_body = True

    def __init__(
        self, api_key: str, api_secret: Secret, passphrase: Secret, key_version: str, prefix: str = ""
    ) -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._passphrase = passphrase
        self._version = key_version
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = str(int(time.time() * 1000))
        secret = self._secret.reveal()
        endpoint = api_target(request, self._prefix)
        passphrase = self._passphrase.reveal()
        request.headers["KC-API-KEY"] = self._api_key
        request.headers["KC-API-SIGN"] = sign(secret, ts, request.method, endpoint, request.content.decode())
        request.headers["KC-API-TIMESTAMP"] = ts
        request.headers["KC-API-PASSPHRASE"] = (
            passphrase if self._version == "1" else sign_passphrase(secret, passphrase)
        )
        request.headers["KC-API-KEY-VERSION"] = self._version
        request.headers["Content-Type"] = "application/json"
        yield request


def decode(response: httpx.Response) -> Any:
    """`data` of a successful answer, or the error KuCoin's `code` means."""
    body: Any = None
    if response.status_code == 429 or response.status_code >= 500:
        check_status(response, NAME)
    body = json_body(response, NAME)
    if not isinstance(body, dict) or "code" not in body:
        raise UnexpectedResponse(
            f"{NAME} answered with an unexpected shape", raw_code=f"HTTP {response.status_code}"
        )
    code, message = str(body["code"]), short(str(body.get("msg", "")))
    if code == "200000":
        return body.get("data")
    if code in _CLOCK_CODES:
        raise ClockSkew(f"{NAME} says KeyMedic's clock is off ({message})", raw_code=code)
    if code in _RATE_LIMIT_CODES:
        raise RateLimited(
            f"{NAME} is rate limiting requests", raw_code=code, retry_after_s=_reset_s(response)
        )
    if code in ERRORS:
        raise AuthRejected(code, message, ERRORS[code])
    if code.startswith("5"):
        raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=code)
    raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({message})", raw_code=code)


def _reset_s(response: httpx.Response) -> float | None:
    # KuCoin tells the wait in `gw-ratelimit-reset` (ms until the pool resets), not in Retry-After (§4).
    raw = response.headers.get("gw-ratelimit-reset", "")
    return int(raw) / 1000 if raw.isdigit() else None


class KucoinClient(ExchangeClient):
    exchange = "kucoin"
    default_base_url = "https://api.kucoin.com"
    needs_passphrase = True

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        if not (len(key) == 24 and all(c in "0123456789abcdef" for c in key.lower())):
            problems.append(
                f"A KuCoin API key is 24 letters and digits (0-9, a-f); this one is {len(key)} characters. "
                "Copy it again in full."
            )
        parts = secret.split("-")
        if [len(p) for p in parts] != [8, 4, 4, 4, 12] or not all(
            c in "0123456789abcdef" for c in secret.lower().replace("-", "")
        ):
            problems.append(
                "A KuCoin API secret looks like 8-4-4-4-12 letters and digits separated by dashes (36 "
                "characters). Copy it again in full."
            )
        if credentials.key_version not in (None, "1", "2", "3"):
            problems.append("The KuCoin key version is 1, 2 or 3 (shown on KuCoin's API Management page).")
        elif credentials.key_version == "1":
            problems.append("KuCoin no longer accepts version 1 keys. Create a new read-only key.")
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        creds = self.credentials
        assert creds.passphrase is not None  # the format check requires it
        version = creds.key_version or DEFAULT_KEY_VERSION
        auth = KucoinAuth(creds.api_key, creds.api_secret, creds.passphrase, version, session.prefix)
        info = await session.call("GET", "/api/v1/user/api-key", auth=auth, decode=decode)
        if not isinstance(info, dict):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape")
        findings.add(
            passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.PASSPHRASE_OK), passed(Item.ACTIVATED)
        )
        findings.add(*_key_outcomes(info))

        activity: list[str] = []

        async def accounts() -> None:
            rows = await session.call("GET", "/api/v1/accounts", auth=auth, decode=decode)
            if any(positive(r.get("balance")) for r in rows or [] if isinstance(r, dict)):
                activity.append("a balance")

        async def ledgers() -> None:
            page = await session.call(
                "GET",
                "/api/v1/accounts/ledgers",
                auth=auth,
                decode=decode,
                params={"currentPage": "1", "pageSize": "10"},
            )
            if isinstance(page, dict) and (page.get("totalNum") or page.get("items")):
                activity.append("recent ledger entries")

        await settle_all(findings, [accounts(), ledgers()])
        findings.add(
            activity_outcome(
                activity,
                "No balance and no recent ledger entries; KuCoin's ledger shows a limited time window, "
                "so older activity may still exist.",
            )
        )


_WITHDRAW_WORDS: Final = ("withdraw", "transfer")
_TRADE_WORDS: Final = ("trade", "spot", "margin", "futures", "leveraged")


def _key_outcomes(info: dict[str, Any]) -> Verdict:
    outcomes = []
    permission = info.get("permission")
    if isinstance(permission, str):
        perms = [p.strip().lower() for p in permission.split(",") if p.strip()]
        outcomes.append(
            passed(Item.READ_PERMISSION) if "general" in perms else failed(Item.READ_PERMISSION, _FIX_READ)
        )
        withdraw = any(w in p for p in perms for w in _WITHDRAW_WORDS)
        trade = any(w in p for p in perms for w in _TRADE_WORDS)
        if withdraw or trade:
            outcomes.append(
                failed(
                    Item.NO_TRADE_OR_WITHDRAW,
                    fix_trade_or_withdraw(withdraw=withdraw, trade=trade),
                    detail="Permissions: " + permission,
                )
            )
        else:
            outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    whitelist = info.get("ipWhitelist")
    if isinstance(whitelist, str):
        outcomes.append(
            failed(Item.NO_IP_RESTRICTION, FIX_IP) if whitelist.strip() else passed(Item.NO_IP_RESTRICTION)
        )
    return tuple(outcomes)
