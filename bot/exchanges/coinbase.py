"""Coinbase Advanced Trade with CDP API keys (reference/exchanges.md §2).

Signing (§2): every request carries `Authorization: Bearer <JWT>`, ES256 over the CDP key's EC private key;
header `kid` = key name and a random `nonce`; claims `sub` = key name, `iss` = "cdp" (the current docs; §2
notes the SDK's "coinbase-cloud" too), `nbf` = now, `exp` = now + 120 s, `uri` = "METHOD host/path" without
the query. The host is the one of the base URL in use (the sandbox's host:port in tests).

Keys: a CDP key name is `organizations/{org}/apiKeys/{id}` with a PEM "EC PRIVATE KEY" secret. Legacy keys (16
characters, 32-character secret) were expired in February 2025 and are explained before any request.

Ed25519 CDP keys (the portal's default now: an id, and a secret that is base64 of 64 bytes, seed then public
key) are signed as Coinbase's CDP SDKs sign them (§2; the SDK's `JwtOptions` support ES256 and EdDSA):
`alg: EdDSA` over the 32-byte seed, header `kid`/`nonce`/`typ`, claims `sub`, `iss: "cdp"`, `nbf`, `exp` and
`uris: [uri]` as the SDK sends, plus `uri`, which the Advanced Trade docs name (§2: which one Advanced Trade
reads is unconfirmed; a JWT may carry both). Coinbase's App docs say the App SDKs don't support Ed25519 (§2),
so only when Coinbase refuses such a key is the user told to make an ECDSA key, and how.

Calls: `GET /api/v3/brokerage/key_permissions` (can_view/can_trade/can_transfer; no IP information), then
together `GET /api/v3/brokerage/accounts` and `GET /api/v3/brokerage/orders/historical/fills?limit=1`.
Coinbase answers a bare 401 for an unknown key, a wrong secret, an expired JWT and a blocked IP alike (§0.4):
those items stay unknown.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Generator
from typing import Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bot.exchanges._base import (
    DETAIL_IP_NOT_REPORTED,
    FIX_IP,
    AuthRejected,
    ExchangeClient,
    Findings,
    UnexpectedResponse,
    Verdict,
    activity_outcome,
    api_target,
    failed,
    fix_trade_or_withdraw,
    not_applicable,
    passed,
    positive,
    settle_all,
    undecided,
)
from bot.exchanges._http import Session, check_status, json_body
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

__all__ = [
    "CoinbaseAuth",
    "CoinbaseClient",
    "build_jwt",
    "load_private_key",
    "load_ed25519_key",
    "load_signing_key",
    "is_legacy_key",
    "ERRORS",
]

NAME: Final = "Coinbase"
JWT_LIFETIME_S: Final = 120
ISSUER: Final = "cdp"

KEY_NAME = re.compile(r"^organizations/[0-9a-fA-F-]{36}/apiKeys/[0-9a-fA-F-]{36}$")
# An Ed25519 CDP key is named by its id alone, or in the organizations/… form.
KEY_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_LEGACY_KEY = re.compile(r"^[A-Za-z0-9]{16}$")
_LEGACY_SECRET = re.compile(r"^[A-Za-z0-9]{32}$")

LEGACY_FIX: Final = (
    "This is a legacy Coinbase API key (16-character key, 32-character secret). Coinbase expired all legacy "
    'keys in February 2025, so it can\'t work any more. Create a new CDP API key (ECDSA, "View" permission '
    "only) on the Coinbase Developer Platform and paste its key name and private key."
)

_AMBIGUOUS: Final = (
    'Coinbase answers a bare 401 "Unauthorized" for an unknown or deleted key, a private key that doesn\'t '
    "match, and a caller outside the key's IP allowlist. It doesn't say which."
)

_FIX_VIEW: Final = (
    'This key is missing the "View" permission. Create a new CDP key with View only (leave Trade and '
    "Transfer off)."
)

# The map from Coinbase's answers (§2 "Errors", §14) to checklist items, by HTTP status.
ERRORS: Final[dict[str, Verdict]] = {
    "401": (
        undecided(
            Item.KEY_KNOWN,
            _AMBIGUOUS,
            fix="If you deleted this key or aren't sure you copied the whole key name, create a new CDP key.",
        ),
        undecided(
            Item.SECRET_OK,
            _AMBIGUOUS,
            fix="Paste the private key exactly as downloaded, from -----BEGIN to END-----, line breaks "
            "included.",
        ),
        undecided(Item.NO_IP_RESTRICTION, _AMBIGUOUS, fix=FIX_IP),
    ),
    "403": (
        passed(Item.KEY_KNOWN),
        passed(Item.SECRET_OK),
        failed(
            Item.READ_PERMISSION,
            'This key is missing the "View" permission. Create a new CDP key with View only (leave Trade and '
            "Transfer off).",
        ),
    ),
}


_ED25519_REFUSED: Final[Verdict] = (
    undecided(
        Item.KEY_KNOWN,
        "Coinbase refused this Ed25519 key with a bare 401. Coinbase's App SDKs don't support Ed25519 "
        "keys (they need ECDSA), so the algorithm is the likely cause; a deleted key or a blocked IP "
        "answer the same.",
        fix="Create a new CDP API key on the Coinbase Developer Platform and, under Advanced settings, "
        "choose "
        "ECDSA as the signature algorithm (View permission only, no IP allowlist). Then paste its key name "
        "(organizations/…/apiKeys/…) and the whole private key (-----BEGIN EC PRIVATE KEY-----).",
    ),
    undecided(Item.SECRET_OK, "Coinbase's 401 doesn't say whether the key or its signature was refused."),
    undecided(Item.NO_IP_RESTRICTION, _AMBIGUOUS, fix=FIX_IP),
)


def is_legacy_key(api_key: str, api_secret: str) -> bool:
    """A pre-CDP key: 16-character key and 32-character secret, expired in February 2025 (§0.6)."""
    return bool(_LEGACY_KEY.match(api_key) and _LEGACY_SECRET.match(api_secret))


def load_private_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """The EC P-256 key of a CDP secret; `ValueError` (without the key's text) when it is not one."""
    try:
        key = serialization.load_pem_private_key(pem.strip().encode() + b"\n", password=None)
    except (ValueError, TypeError):
        raise ValueError("not a readable PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an EC P-256 (ECDSA) key")
    return key


def load_ed25519_key(secret: str) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key of a CDP secret (base64 of seed + public key); `ValueError` (without the key's text)
    when it is not one or its two halves disagree (a corrupted paste)."""
    try:
        raw = base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 64:
        raise ValueError("not 64 bytes")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if public != raw[32:]:
        raise ValueError("its private and public halves don't match")
    return key


def load_signing_key(secret: str) -> SigningKey:
    """The key a CDP secret holds: EC P-256 (PEM) or Ed25519 (base64)."""
    return load_private_key(secret) if "-----BEGIN" in secret else load_ed25519_key(secret)


def build_jwt(key_name: str, private_key: SigningKey, method: str, host: str, path: str) -> str:
    """The JWT for one request: ES256 for an ECDSA key, EdDSA for an Ed25519 key (§2)."""
    now = int(time.time())
    uri = f"{method.upper()} {host}{path}"
    claims: dict[str, Any] = {
        "sub": key_name,
        "iss": ISSUER,
        "nbf": now,
        "exp": now + JWT_LIFETIME_S,
        "uri": uri,
    }
    headers = {"kid": key_name, "nonce": secrets.token_hex(16)}
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        claims["uris"] = [uri]
        headers["typ"] = "JWT"
        return jwt.encode(claims, private_key, algorithm="EdDSA", headers=headers)
    return jwt.encode(claims, private_key, algorithm="ES256", headers=headers)


class CoinbaseAuth(httpx.Auth):
    """A fresh JWT per request (and per retry), bound to its method, host and path."""

    def __init__(self, key_name: str, api_secret: Secret, prefix: str = "") -> None:
        self._key_name = key_name
        self._private_key = load_signing_key(api_secret.reveal())
        self._prefix = prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = api_target(request, self._prefix, with_query=False)
        host = request.url.netloc.decode("ascii")
        token = build_jwt(self._key_name, self._private_key, request.method, host, path)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def decode(response: httpx.Response) -> Any:
    """The JSON answer, or what Coinbase's status means."""
    check_status(response, NAME)
    status = response.status_code
    if status in (401, 403):
        raise AuthRejected(str(status), "Unauthorized" if status == 401 else "Forbidden", ERRORS[str(status)])
    if status != 200:
        raise UnexpectedResponse(f"{NAME} answered HTTP {status}", raw_code=f"HTTP {status}")
    return json_body(response, NAME)


class CoinbaseClient(ExchangeClient):
    exchange = "coinbase"
    default_base_url = "https://api.coinbase.com"

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        key, secret = credentials.api_key, credentials.api_secret.reveal()
        if is_legacy_key(key, secret):
            return [LEGACY_FIX]
        if "-----BEGIN" in key:
            return [
                'The key name and the private key look swapped: the key name starts with "organizations/".'
            ]
        problems = []
        if _is_ed25519_secret(secret):
            try:
                load_ed25519_key(secret)
            except ValueError as exc:
                problems.append(
                    f"The Ed25519 private key can't be read ({exc}): it looks truncated or altered. Paste it "
                    "again exactly as Coinbase showed it."
                )
            if not (KEY_NAME.match(key) or KEY_ID.match(key)):
                problems.append(
                    "A Coinbase CDP key id looks like 8-4-4-4-12 letters and digits. Copy it in full."
                )
            return problems
        elif "-----BEGIN" not in secret:
            problems.append(
                "The private key should be a block starting with -----BEGIN EC PRIVATE KEY-----. Paste the "
                "whole private key from the file Coinbase gave you."
            )
        else:
            try:
                load_private_key(secret)
            except ValueError as exc:
                problems.append(
                    f"The private key can't be read ({exc}): it looks truncated or altered. Paste it again "
                    "exactly as downloaded, from -----BEGIN to END-----."
                )
        if not KEY_NAME.match(key):
            problems.append(
                "A Coinbase CDP key name looks like organizations/<id>/apiKeys/<id>. Copy the full key name."
            )
        return problems

    def preset(self, findings: Findings) -> None:
        detail = "Coinbase CDP keys have no passphrase."
        if self.credentials.passphrase:
            detail += " The passphrase you entered isn't needed and wasn't used."
        findings.add(not_applicable(Item.PASSPHRASE_OK, detail))

    async def probe(self, session: Session, findings: Findings) -> None:
        auth = CoinbaseAuth(self.credentials.api_key, self.credentials.api_secret, session.prefix)
        try:
            permissions = await session.call(
                "GET", "/api/v3/brokerage/key_permissions", auth=auth, decode=decode
            )
        except AuthRejected as exc:
            if exc.raw_code == "401" and _is_ed25519_secret(self.credentials.api_secret.reveal()):
                # Tested first; only now that Coinbase refused it is ECDSA the likely fix (§2).
                raise AuthRejected(exc.raw_code, exc.message, _ED25519_REFUSED) from None
            raise
        if not isinstance(permissions, dict):
            raise UnexpectedResponse(f"{NAME} answered with an unexpected shape")
        findings.add(passed(Item.KEY_KNOWN), passed(Item.SECRET_OK), passed(Item.ACTIVATED))
        findings.add(*_permission_outcomes(permissions))
        findings.add(
            undecided(
                Item.NO_IP_RESTRICTION,
                "The key worked from KeyMedic's address, but " + DETAIL_IP_NOT_REPORTED,
                fix=FIX_IP,
            )
        )

        activity: list[str] = []

        async def accounts() -> None:
            body = await session.call(
                "GET", "/api/v3/brokerage/accounts", auth=auth, decode=decode, params={"limit": "250"}
            )
            rows = body.get("accounts", []) if isinstance(body, dict) else []
            if any(_holds_funds(row) for row in rows if isinstance(row, dict)):
                activity.append("a balance")

        async def fills() -> None:
            body = await session.call(
                "GET",
                "/api/v3/brokerage/orders/historical/fills",
                auth=auth,
                decode=decode,
                params={"limit": "1"},
            )
            if isinstance(body, dict) and body.get("fills"):
                activity.append("trades")

        await settle_all(findings, [accounts(), fills()])
        findings.add(
            activity_outcome(
                activity,
                "No balance and no trades. Deposits and withdrawals alone don't show in these answers. A "
                "CDP key also sees only its own portfolio, so check it was created for the portfolio you "
                "use.",
            )
        )


def _permission_outcomes(permissions: dict[str, Any]) -> Verdict:
    outcomes = []
    can_view = permissions.get("can_view")
    if can_view is True:
        outcomes.append(passed(Item.READ_PERMISSION))
    elif can_view is False:
        outcomes.append(failed(Item.READ_PERMISSION, _FIX_VIEW))
    trade, transfer = permissions.get("can_trade") is True, permissions.get("can_transfer") is True
    if trade or transfer:
        outcomes.append(
            failed(Item.NO_TRADE_OR_WITHDRAW, fix_trade_or_withdraw(withdraw=transfer, trade=trade))
        )
    else:
        outcomes.append(passed(Item.NO_TRADE_OR_WITHDRAW))
    return tuple(outcomes)


def _holds_funds(account: dict[str, Any]) -> bool:
    amounts = [account.get(field) for field in ("available_balance", "hold")]
    return positive(*(a.get("value") for a in amounts if isinstance(a, dict)))


def _is_ed25519_secret(secret: str) -> bool:
    # CDP Ed25519 secrets are base64 of 64 bytes (seed + public key), not PEM.
    if "-----BEGIN" in secret or len(secret) != 88:
        return False
    try:
        return len(base64.b64decode(secret, validate=True)) == 64
    except (binascii.Error, ValueError):
        return False
