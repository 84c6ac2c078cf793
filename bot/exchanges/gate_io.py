"""Gate API v4 (reference/exchanges.md §11).

Signing (§11, derived vector §12): `SIGN = hex(HMAC-SHA512(secret, METHOD\\n/api/v4/<path>\\nquery\\n
hex(SHA512(body))\\ntimestamp))`, headers `KEY`, `Timestamp` (unix seconds), `SIGN`. A timestamp, no nonce.

Calls: `GET /api/v4/account/detail` (settles key and secret, lists the account's IP whitelist), then together
`GET /api/v4/account/main_keys` (each key's `perms[].read_only` and `state`) and `GET /api/v4/spot/accounts`
(read access, balances); `GET /api/v4/wallet/deposits?limit=1` (activity) only when the spot account is empty.

`main_keys` shows each key masked; KeyMedic matches the pasted key by its visible head and tail and says
"can't tell" when no single entry matches (never a guess from someone else's key).
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
from bot.types.diagnosis import Item, Status

__all__ = ["GateAuth", "GateClient", "sign", "decode", "ERRORS"]

NAME: Final = "Gate.io"

_FIX_KEY_UNKNOWN: Final = (
    "Gate.io doesn't know this API key: it may be incomplete, deleted, or a testnet key. Copy it again in "
    "full, or create a new read-only key."
)
_FIX_LOCKED: Final = (
    "Gate.io has locked or frozen this key or account. Unlock it in Gate.io's API key management (or ask "
    "Gate.io support), or create a new read-only key."
)
_FIX_READ: Final = (
    FIX_READ + " On Gate.io give the key read-only access to Spot and Wallet (a futures-only key can't read "
    "the account)."
)

# The map from Gate's error labels (§11 "Errors", §14) to checklist items.
ERRORS: Final[dict[str, Verdict]] = {
    "INVALID_KEY": (
        failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),
        undecided(Item.SECRET_OK, "Gate.io stopped at the key, so the secret wasn't checked."),
    ),
    "INVALID_SIGNATURE": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "INVALID_CREDENTIALS": (
        undecided(Item.KEY_KNOWN, 'Gate.io answered "invalid credentials" without saying which part.'),
        undecided(Item.SECRET_OK, 'Gate.io answered "invalid credentials" without saying which part.'),
    ),
    "IP_FORBIDDEN": (passed(Item.KEY_KNOWN), failed(Item.NO_IP_RESTRICTION, FIX_IP)),
    # A key without account permission gets 403 FORBIDDEN on the account endpoints (§11): not a bad key.
    "FORBIDDEN": (passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), failed(Item.READ_PERMISSION, _FIX_READ)),
    "READ_ONLY": (passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), failed(Item.READ_PERMISSION, _FIX_READ)),
    "ACCOUNT_LOCKED": (passed(Item.KEY_KNOWN), failed(Item.ACTIVATED, _FIX_LOCKED)),
}

_CLOCK_LABELS: Final = {"REQUEST_EXPIRED"}
_RATE_LIMIT_LABELS: Final = {"TOO_FAST", "TOO_MANY_REQUESTS"}
_SERVER_LABELS: Final = {"SERVER_ERROR", "INTERNAL"}


def sign(secret: str, method: str, path: str, query: str, body: str, ts: str) -> str:
    """Gate's SIGN (§11; derived vector §12)."""
    hashed = hashlib.sha512(body.encode()).hexdigest()
    message = f"{method.upper()}\n{path}\n{query}\n{hashed}\n{ts}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()


class GateAuth(httpx.Auth):
    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = str(int(time.time()))
        path = api_target(request, self._prefix, with_query=False)
        query = request.url.query.decode("ascii")
        request.headers["KEY"] = self._api_key
        request.headers["Timestamp"] = ts
        request.headers["SIGN"] = sign(
            self._secret.reveal(), request.method, path, query, request.content.decode(), ts
        )
        yield request


def decode(response: httpx.Response) -> Any:
    """The JSON of a successful answer, or the error Gate's `label` means."""
    if response.status_code < 400:
        return json_body(response, NAME)
    body: Any = None
    if response.status_code < 500 and response.status_code != 429:
        try:
            body = json_body(response, NAME)
        except UnexpectedResponse:
            body = None
    label = str(body.get("label", "")) if isinstance(body, dict) else ""
    message = short(str(body.get("message", ""))) if isinstance(body, dict) else ""
    if label in _RATE_LIMIT_LABELS:
        raise RateLimited(f"{NAME} is rate limiting requests", raw_code=label)
    check_status(response, NAME)
    if label in _CLOCK_LABELS:
        raise ClockSkew(f"{NAME} says KeyMedic's clock is off ({message})", raw_code=label)
    if label in _SERVER_LABELS:
        raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=label)
    if label in ERRORS:
        raise AuthRejected(label, message, ERRORS[label])
    raise UnexpectedResponse(
        f"{NAME} answered with an unexpected error ({message or response.status_code})",
        raw_code=label or f"HTTP {response.status_code}",
    )


def _hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdefABCDEF" for c in text)


class GateClient(ExchangeClient):
    exchange = "gate_io"
    default_base_url = "https://api.gateio.ws"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        if not _hex(key, 32):
            problems.append(
                f"A Gate.io API key is 32 letters and digits (0-9, a-f); this one is {len(key)} characters. "
                "Copy it again in full."
            )
        if not _hex(secret, 64):
            problems.append(
                f"A Gate.io API secret is 64 letters and digits (0-9, a-f); this one is {len(secret)} "
                "characters. Copy it again in full."
            )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = GateAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        detail = await session.call("GET", "/api/v4/account/detail", auth=auth, decode=decode)
        if not isinstance(detail, dict):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape")
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK))
        whitelist = detail.get("ip_whitelist")
        if isinstance(whitelist, list):
            findings.add(
                failed(
                    Item.NO_IP_RESTRICTION, FIX_IP, detail="IP whitelist: " + ", ".join(map(str, whitelist))
                )
                if whitelist
                else passed(Item.NO_IP_RESTRICTION)
            )

        activity: list[str] = []

        async def keys() -> None:
            rows = await session.call("GET", "/api/v4/account/main_keys", auth=auth, decode=decode)
            findings.add(*main_key_outcomes(rows, self.credentials.api_key))

        async def balances() -> None:
            rows = await session.call("GET", "/api/v4/spot/accounts", auth=auth, decode=decode)
            findings.add(passed(Item.READ_PERMISSION))
            if isinstance(rows, list) and any(
                positive(r.get("available"), r.get("locked")) for r in rows if isinstance(r, dict)
            ):
                activity.append("a spot balance")

        await settle_all(findings, [keys(), balances()])
        if not activity and findings.status(Item.READ_PERMISSION) is Status.PASS:
            # Only an empty spot account is worth a third call: fewer requests per check under load.
            rows = await session.call(
                "GET", "/api/v4/wallet/deposits", auth=auth, decode=decode, params={"limit": "1"}
            )
            if isinstance(rows, list) and rows:
                activity.append("a deposit")
        findings.add(
            activity_outcome(
                activity,
                "No spot balance and no deposit in Gate.io's recent window; older activity isn't visible "
                "in one call.",
            )
        )


def _matches(masked: str, api_key: str) -> bool:
    """Whether Gate's masked key (`abcd****wxyz`) can be this key: the visible head and tail agree."""
    if "*" not in masked:
        return masked == api_key
    head = masked[: masked.index("*")]
    tail = masked[len(masked.rstrip("*")) :] if masked.endswith("*") else masked[masked.rindex("*") + 1 :]
    return bool(head or tail) and api_key.startswith(head) and api_key.endswith(tail)


def main_key_outcomes(rows: object, api_key: str) -> Verdict:
    """What `GET /api/v4/account/main_keys` says about this key: permissions and state."""
    entries = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    mine = [r for r in entries if _matches(str(r.get("key", "")), api_key)]
    if len(mine) != 1:
        reason = "Gate.io lists its keys masked, and KeyMedic couldn't single this one out"
        return (undecided(Item.NO_TRADE_OR_WITHDRAW, reason + ", so its permissions are unknown."),)
    entry = mine[0]
    outcomes = []
    perms = [p for p in entry.get("perms") or [] if isinstance(p, dict)]
    writable = sorted(str(p.get("name")) for p in perms if p.get("read_only") is False)
    if writable:
        # Gate's "wallet" permission, read-write, is the one that moves funds out (withdrawals, transfers).
        movers = {name for name in writable if name == "wallet" or "withdraw" in name}
        outcomes.append(
            failed(
                Item.NO_TRADE_OR_WITHDRAW,
                fix_trade_or_withdraw(withdraw=bool(movers), trade=bool(set(writable) - movers)),
                detail="Read-write permissions: " + ", ".join(writable),
            )
        )
    elif perms:
        outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    else:
        outcomes.append(undecided(Item.NO_TRADE_OR_WITHDRAW, "Gate.io didn't list the key's permissions."))
    state = entry.get("state")
    if state in (2, 3):
        what = "locked" if state == 2 else "frozen"
        outcomes.append(failed(Item.ACTIVATED, _FIX_LOCKED, detail=f"Gate.io shows this key as {what}."))
    elif state == 1:
        outcomes.append(passed(Item.ACTIVATED))
    return tuple(outcomes)
