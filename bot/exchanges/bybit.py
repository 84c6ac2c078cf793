"""Bybit v5 (docs/exchanges/bybit.md, with its sources).

Signing: `X-BAPI-SIGN = hex(HMAC-SHA256(secret, timestamp + api_key + recv_window + payload))`, the payload
being the query string exactly as sent (GET) or the JSON body (POST); headers `X-BAPI-API-KEY`,
`X-BAPI-TIMESTAMP` (ms), `X-BAPI-RECV-WINDOW`, `X-BAPI-SIGN`. A timestamp, not a nonce: testing a key cannot
disturb the user's other clients.

Calls: `GET /v5/user/query-api` ("any permission can access this endpoint"; settles key, secret, read-only
flag, withdraw permission, bound IPs and expiry in one answer), then
`GET /v5/account/wallet-balance?accountType=UNIFIED` (read access, balances), and only when that shows no
balance `GET /v5/account/transaction-log` (the last 7 days) for activity.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    FIX_IP,
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

__all__ = ["BybitAuth", "BybitClient", "sign", "decode", "ERRORS", "RECV_WINDOW_MS"]

NAME: Final = "Bybit"
RECV_WINDOW_MS: Final = 5000

_FIX_KEY_UNKNOWN: Final = (
    "Bybit doesn't know this API key. Copy it again in full. A Bybit key works only where it was created: "
    "a testnet or demo-trading key, or one made on a regional Bybit site (Bybit EU, TR, NL, …), isn't valid "
    "on bybit.com; otherwise create a new read-only key."
)
_FIX_EXPIRED: Final = (
    "This Bybit key has expired (Bybit expires keys without an IP binding after a while). Create a new "
    "read-only key."
)

# The map from Bybit's authentication retCodes (docs/exchanges/bybit.md "Errors") to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    "10003": (
        failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),
        undecided(Item.SECRET_OK, "Bybit stopped at the key, so the secret wasn't checked."),
    ),
    "10004": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "10005": (passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), failed(Item.READ_PERMISSION, FIX_READ)),
    "10010": (passed(Item.KEY_KNOWN), failed(Item.NO_IP_RESTRICTION, FIX_IP)),
    "33004": (passed(Item.KEY_KNOWN), failed(Item.ACTIVATED, _FIX_EXPIRED)),
    "10007": (undecided(Item.KEY_KNOWN, 'Bybit answered "User authentication failed" without saying why.'),),
}

_CLOCK_CODES: Final = {"10002", "10021"}
_RATE_LIMIT_CODES: Final = {"10006", "10018"}
_SERVER_CODES: Final = {"10000", "10016"}


def sign(secret: str, ts: str, api_key: str, recv_window: str, payload: str) -> str:
    """Bybit's X-BAPI-SIGN (docs/exchanges/bybit.md "Signing"; ccxt-derived vector in the tests)."""
    message = ts + api_key + recv_window + payload
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class BybitAuth(httpx.Auth):
    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret) -> None:
        self._api_key = api_key
        self._secret = api_secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = str(int(time.time() * 1000))
        if request.method == "GET":
            payload = request.url.query.decode("ascii")
        else:
            payload = request.content.decode()
            request.headers["Content-Type"] = "application/json"
        window = str(RECV_WINDOW_MS)
        request.headers["X-BAPI-API-KEY"] = self._api_key
        request.headers["X-BAPI-TIMESTAMP"] = ts
        request.headers["X-BAPI-RECV-WINDOW"] = window
        request.headers["X-BAPI-SIGN"] = sign(self._secret.reveal(), ts, self._api_key, window, payload)
        yield request


def _reset_in_s(response: httpx.Response) -> float | None:
    # X-Bapi-Limit-Reset-Timestamp: when the per-UID window frees up, in ms (docs/exchanges/bybit.md).
    raw = response.headers.get("X-Bapi-Limit-Reset-Timestamp", "")
    return max(0.0, int(raw) / 1000 - time.time()) if raw.isdigit() else None


def decode(response: httpx.Response) -> dict[str, Any]:
    """`result` of a successful answer, or the error Bybit's `retCode` means."""
    if response.status_code == 403 and not response.content.lstrip().startswith(b"{"):
        # Bybit's IP ban for too many requests ("403, access too frequent"; also the answer to US and
        # mainland-China addresses). Retrying extends a ban, so this waits for the whole deployment.
        raise RateLimited(
            f"{NAME} refused requests from KeyMedic's address for a while",
            raw_code="HTTP 403",
            retry_after_s=600.0,
            retryable=False,
        )
    check_status(response, NAME)
    body = json_body(response, NAME)
    if not isinstance(body, dict) or "retCode" not in body:
        raise UnexpectedResponse(
            f"{NAME} answered with an unexpected shape", raw_code=f"HTTP {response.status_code}"
        )
    code, message = str(body["retCode"]), short(str(body.get("retMsg", "")))
    if code == "0":
        result = body.get("result")
        if not isinstance(result, dict):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape", raw_code=code)
        return result
    if code in _CLOCK_CODES:
        raise ClockSkew(f"{NAME} says KeyMedic's clock is off ({message})", raw_code=code)
    if code in _RATE_LIMIT_CODES:
        raise RateLimited(
            f"{NAME} is rate limiting requests", raw_code=code, retry_after_s=_reset_in_s(response)
        )
    if code in _SERVER_CODES:
        raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=code)
    if code in ERRORS:
        raise AuthRejected(code, message, ERRORS[code])
    raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({message})", raw_code=code)


class BybitClient(ExchangeClient):
    exchange = "bybit"
    default_base_url = "https://api.bybit.com"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        if not (len(key) == 18 and key.isascii() and key.isalnum()):
            problems.append(
                f"A Bybit API key is 18 letters and digits; this one is {len(key)} characters. Copy it again "
                "in full."
            )
        if secret.startswith("-----BEGIN"):
            problems.append(
                "This is an RSA (self-generated) Bybit key; KeyMedic reads Bybit with system-generated "
                "(HMAC) keys. Create a new read-only key with 'System-generated API Keys'."
            )
        elif not (len(secret) == 36 and secret.isascii() and secret.isalnum()):
            problems.append(
                f"A Bybit API secret is 36 letters and digits; this one is {len(secret)} characters. Copy it "
                "again in full."
            )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = BybitAuth(self.credentials.api_key, self.credentials.api_secret)
        info = await session.call("GET", "/v5/user/query-api", auth=auth, decode=decode)
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK))
        findings.add(*key_info_outcomes(info, now=time.time()))

        activity: list[str] = []

        async def balance() -> None:
            result = await session.call(
                "GET",
                "/v5/account/wallet-balance",
                auth=auth,
                decode=decode,
                params={"accountType": "UNIFIED"},
            )
            findings.add(passed(Item.READ_PERMISSION))
            accounts = result.get("list") or []
            coins = [c for a in accounts if isinstance(a, dict) for c in a.get("coin") or []]
            if any(positive(c.get("walletBalance"), c.get("equity")) for c in coins if isinstance(c, dict)):
                activity.append("a balance")

        async def log() -> None:
            now_ms = int(time.time() * 1000)
            result = await session.call(
                "GET",
                "/v5/account/transaction-log",
                auth=auth,
                decode=decode,
                params={"startTime": str(now_ms - 7 * 86_400_000), "endTime": str(now_ms), "limit": "1"},
            )
            if result.get("list"):
                activity.append("transactions in the last 7 days")

        # settle_all records a refusal of these reads as findings: the key itself was accepted above.
        await settle_all(findings, [balance()])
        if not activity:
            # Only an empty account is worth a second read: fewer requests per check under load.
            await settle_all(findings, [log()])
        findings.add(
            activity_outcome(
                activity,
                "No balance and no transactions in the last 7 days; Bybit's API reads history 7 days at "
                "a time, so older activity isn't visible in one call.",
            )
        )


def key_info_outcomes(info: dict[str, Any], *, now: float) -> Verdict:
    """What `GET /v5/user/query-api` says about permissions, IP binding and expiry."""
    outcomes = []
    permissions = info.get("permissions") if isinstance(info.get("permissions"), dict) else {}
    assert isinstance(permissions, dict)
    wallet = [str(p) for p in permissions.get("Wallet") or []]
    withdraw = "Withdraw" in wallet
    read_only = info.get("readOnly")
    if read_only not in (0, 1):
        outcomes.append(
            undecided(Item.NO_TRADE_OR_WITHDRAW, "Bybit didn't say whether the key is read-only.")
        )
    else:
        trade = read_only == 0
        if trade or withdraw:
            granted = [f"{scope}: {', '.join(map(str, v))}" for scope, v in permissions.items() if v]
            outcomes.append(
                failed(
                    Item.NO_TRADE_OR_WITHDRAW,
                    fix_trade_or_withdraw(withdraw=withdraw, trade=trade),
                    detail="Read and Write key. " + "; ".join(granted) if trade else "; ".join(granted),
                )
            )
        else:
            outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    ips = info.get("ips")
    if isinstance(ips, list):
        # Bybit lists "*" for a key bound to no IP.
        bound = [str(ip) for ip in ips if str(ip).strip() not in ("", "*")]
        outcomes.append(
            failed(Item.NO_IP_RESTRICTION, FIX_IP, detail="Bound IPs: " + ", ".join(bound))
            if bound
            else passed(Item.NO_IP_RESTRICTION)
        )
    else:
        outcomes.append(undecided(Item.NO_IP_RESTRICTION, "Bybit didn't list the key's IP binding."))
    expires = _expiry(info.get("expiredAt"))
    if expires is not None and expires <= now:
        outcomes.append(failed(Item.ACTIVATED, _FIX_EXPIRED, detail=f"Expired {info.get('expiredAt')}."))
    else:
        detail = None
        days = info.get("deadlineDay")
        if expires is not None and isinstance(days, int) and days >= 0:
            detail = f"Bybit will expire this key in {days} days unless it is bound to an IP."
        outcomes.append(passed(Item.ACTIVATED, detail))
    return tuple(outcomes)


def _expiry(value: object) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
