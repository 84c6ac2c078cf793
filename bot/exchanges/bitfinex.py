"""Bitfinex v2 (reference/exchanges.md §9).

Signing (§9, derived vector §12): POST JSON to `/v2/auth/r/<…>` with headers `bfx-apikey`, `bfx-nonce`,
`bfx-signature = hex(HMAC-SHA384(secret, "/api/" + apiPath + nonce + body))`, body `{}` when empty.

The nonce must strictly increase per key (§0.2). Bitfinex's own sample sends microseconds, ccxt and many
other clients milliseconds. KeyMedic sends **milliseconds** (the sync's scheme, the same `next_nonce`): a
microsecond nonce would sit a thousand times above what a millisecond client sends next and break that client
for good, while a millisecond nonce at worst is refused ("nonce: small"), which KeyMedic reports as "couldn't
check", never as a bad key.

Calls, one after the other (nonces must arrive in order): `auth/r/permissions` (settles key and secret; read,
withdraw and order scopes), `auth/r/wallets` (balances), then `auth/r/ledgers/hist` with `limit: 1` when the
wallets are empty. Bitfinex does not report a key's IP allowlist (§0.5): that item is "can't tell".
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Generator
from typing import Any, Final

import httpx

from bot.exchanges._base import (
    DETAIL_IP_NOT_REPORTED,
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
    positive,
    settle_all,
    short,
    undecided,
)
from bot.exchanges._http import Session, check_status, json_body
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = ["BitfinexAuth", "BitfinexClient", "sign", "decode", "next_nonce", "ERRORS"]

NAME: Final = "Bitfinex"

_FIX_KEY_UNKNOWN: Final = (
    "Bitfinex doesn't know this API key: it may be incomplete, or it was deleted. Copy it again in full, or "
    "create a new read-only key."
)
_FIX_READ: Final = FIX_READ + " On Bitfinex allow Read for Account History and Wallets."

# Bitfinex answers errors as `["error", <code>, "<message>"]`; KeyMedic keys its map on the message
# (§9 "Errors", §14), which names the cause, while the numeric code (10100) is shared by several.
ERRORS: Final[dict[str, Verdict]] = {
    "apikey: invalid": (
        failed(Item.KEY_KNOWN, _FIX_KEY_UNKNOWN),
        undecided(Item.SECRET_OK, "Bitfinex stopped at the key, so the secret wasn't checked."),
    ),
    "apikey: digest invalid": (passed(Item.KEY_KNOWN), failed(Item.SECRET_OK, FIX_SECRET)),
    "ERR_AUTH_UNAUTHORIZED": (
        undecided(Item.KEY_KNOWN, 'Bitfinex answered "unauthorized" without saying why.'),
    ),
}

# Milliseconds, strictly increasing in the process: see the module docstring.
next_nonce = MillisNonce()


def sign(secret: str, api_path: str, nonce: str, body: str) -> str:
    """Bitfinex's bfx-signature (§9; derived vector §12). `api_path` is `v2/auth/r/…`, no leading slash."""
    message = "/api/" + api_path + nonce + body
    return hmac.new(secret.encode(), message.encode(), hashlib.sha384).hexdigest()


class BitfinexAuth(httpx.Auth):
    requires_request_body = True

    def __init__(self, api_key: str, api_secret: Secret, prefix: str = "") -> None:
        self._api_key = api_key
        self._secret = api_secret
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        nonce = str(next_nonce())
        body = request.content.decode() or "{}"
        api_path = api_target(request, self._prefix, with_query=False).lstrip("/")
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
        headers += [
            ("Content-Type", "application/json"),
            ("bfx-nonce", nonce),
            ("bfx-apikey", self._api_key),
            ("bfx-signature", sign(self._secret.reveal(), api_path, nonce, body)),
        ]
        yield httpx.Request(
            request.method, request.url, headers=headers, content=body.encode(), extensions=request.extensions
        )


def decode(response: httpx.Response) -> Any:
    """The JSON of a successful answer, or the error Bitfinex's `["error", code, message]` means."""
    body: Any = None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    error: str | None = None
    if isinstance(body, list) and len(body) >= 3 and body[0] == "error":
        error = str(body[2])
    elif isinstance(body, dict) and isinstance(body.get("error"), str):
        error = str(body["error"])  # {"error": "ERR_RATE_LIMIT"}
    if error is None:
        check_status(response, NAME)
        if response.status_code >= 400:
            raise UnexpectedResponse(
                f"{NAME} answered with an unexpected error", raw_code=f"HTTP {response.status_code}"
            )
        return json_body(response, NAME)
    message = short(error)
    if error == "ERR_RATE_LIMIT" or error.startswith("ratelimit"):
        # Bitfinex blocks the caller for 10-60 s after too many requests (§9 "Rate limits").
        raise RateLimited(f"{NAME} is rate limiting requests", raw_code=error, retry_after_s=60.0)
    if error.startswith("nonce"):
        raise ClockSkew(
            f"{NAME} rejected the nonce: another app using this key sends larger nonces than KeyMedic",
            raw_code=error,
        )
    if error in ERRORS:
        raise AuthRejected(error, message, ERRORS[error])
    if response.status_code >= 500 and error.startswith("ERR_"):
        raise ServerError(f"{NAME} reported a problem on its side ({message})", raw_code=error)
    raise UnexpectedResponse(f"{NAME} answered with an unexpected error ({message})", raw_code=error)


class BitfinexClient(ExchangeClient):
    exchange = "bitfinex"
    default_base_url = "https://api.bitfinex.com"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        problems = []
        for label, value in (
            ("API key", credentials.api_key),
            ("API secret", credentials.api_secret.reveal()),
        ):
            if not (value.isascii() and value.isalnum()) or len(value) != 43:
                problems.append(
                    f"A Bitfinex {label} is 43 letters and digits; this one is {len(value)} characters. Copy "
                    "it again in full."
                )
        return problems

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = BitfinexAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        scopes = await session.call("POST", "/v2/auth/r/permissions", auth=auth, decode=decode, json_data={})
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.ACTIVATED))
        findings.add(undecided(Item.NO_IP_RESTRICTION, DETAIL_IP_NOT_REPORTED))
        outcomes = permission_outcomes(scopes)
        findings.add(*outcomes)
        if any(o.item is Item.READ_PERMISSION and o.status.value == "fail" for o in outcomes):
            return  # reading wallets and ledgers would only be refused
        answers: dict[str, Any] = {}

        async def read(name: str, path: str, body: dict[str, Any]) -> None:
            answers[name] = await session.call("POST", path, auth=auth, decode=decode, json_data=body)

        # settle_all records a refusal of these reads as findings: the key itself was accepted above. One
        # after the other: Bitfinex refuses a nonce lower than one it has seen (§0.2).
        await settle_all(findings, [read("wallets", "/v2/auth/r/wallets", {})])
        wallets = answers.get("wallets")
        if isinstance(wallets, list) and any(
            isinstance(w, list) and len(w) > 2 and positive(w[2]) for w in wallets
        ):
            findings.add(passed(Item.HAS_ACTIVITY, "Found a wallet balance."))
            return
        if "wallets" not in answers:
            return
        await settle_all(findings, [read("ledgers", "/v2/auth/r/ledgers/hist", {"limit": 1})])
        if "ledgers" not in answers:
            return
        ledgers = answers["ledgers"]
        if isinstance(ledgers, list) and ledgers:
            findings.add(passed(Item.HAS_ACTIVITY, "Found ledger entries."))
        else:
            findings.add(
                failed(Item.HAS_ACTIVITY, FIX_NO_ACTIVITY, detail="Bitfinex lists no ledger entries."),
                raw_code="ledgers=0",
            )


def permission_outcomes(scopes: object) -> Verdict:
    """What `auth/r/permissions` (`[[scope, read, write], …]`) says about read, trade and withdraw."""
    rows = {
        str(r[0]): (bool(r[1]), bool(r[2]))
        for r in (scopes if isinstance(scopes, list) else [])
        if isinstance(r, list) and len(r) >= 3
    }
    if not rows:
        return (
            undecided(Item.READ_PERMISSION, "Bitfinex didn't list the key's permissions."),
            undecided(Item.NO_TRADE_OR_WITHDRAW, "Bitfinex didn't list the key's permissions."),
        )
    outcomes = []
    can_read = rows.get("history", (False, False))[0] and rows.get("wallets", (False, False))[0]
    outcomes.append(passed(Item.READ_PERMISSION) if can_read else failed(Item.READ_PERMISSION, _FIX_READ))
    withdraw = rows.get("withdraw", (False, False))[1]
    trade = any(rows.get(scope, (False, False))[1] for scope in ("orders", "positions", "funding"))
    if withdraw or trade:
        writable = ", ".join(sorted(scope for scope, (_, write) in rows.items() if write))
        outcomes.append(
            failed(
                Item.NO_TRADE_OR_WITHDRAW,
                fix_trade_or_withdraw(withdraw=withdraw, trade=trade),
                detail="Write access: " + writable,
            )
        )
    else:
        outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    return tuple(outcomes)
