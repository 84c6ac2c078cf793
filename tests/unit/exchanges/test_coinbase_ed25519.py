"""Coinbase Ed25519 CDP keys are tested, not refused: the JWT is EdDSA as the CDP SDKs make it, verified here
with the key's public half; only when Coinbase refuses such a key does the diagnosis explain ECDSA."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bot.diagnosis import diagnose
from bot.exchanges import coinbase
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item, Status
from tests.unit.diagnosis.fakes import fake

KEY_ID = "1f5b6c0e-1111-4222-8333-444455556666"


def ed25519_secret() -> tuple[str, ed25519.Ed25519PublicKey]:
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key()
    raw_public = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + raw_public).decode(), public


def signed(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    flow: Iterator[httpx.Request] = auth.sync_auth_flow(request)
    return next(flow)


def test_an_ed25519_key_signs_an_eddsa_jwt_like_the_cdp_sdk() -> None:
    secret, public = ed25519_secret()
    request = httpx.Request("GET", "https://api.coinbase.com/api/v3/brokerage/key_permissions")
    token = signed(coinbase.CoinbaseAuth(KEY_ID, Secret(secret)), request).headers["Authorization"][7:]

    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"], header["typ"]) == ("EdDSA", KEY_ID, "JWT")
    assert len(header["nonce"]) == 32
    claims = jwt.decode(token, public, algorithms=["EdDSA"])
    uri = "GET api.coinbase.com/api/v3/brokerage/key_permissions"
    assert claims["sub"] == KEY_ID and claims["iss"] == "cdp"
    assert claims["uris"] == [uri] and claims["uri"] == uri
    assert claims["exp"] - claims["nbf"] == 120


def test_a_corrupted_ed25519_secret_is_a_format_problem() -> None:
    secret, _ = ed25519_secret()
    raw = bytearray(base64.b64decode(secret))
    raw[40] ^= 1  # the public half no longer matches the seed
    problems = coinbase.CoinbaseClient.shape_problems(
        Credentials(api_key=KEY_ID, api_secret=Secret(base64.b64encode(bytes(raw)).decode()))
    )
    assert problems and "Ed25519" in problems[0]


async def test_a_working_ed25519_key_passes_without_any_ecdsa_advice() -> None:
    secret, _ = ed25519_secret()
    diagnosis = await diagnose(
        "coinbase", Credentials(api_key=KEY_ID, api_secret=Secret(secret)), client=fake("coinbase").client()
    )
    assert diagnosis.failing() == () and diagnosis.unavailable is None
    assert diagnosis.outcome(Item.KEY_KNOWN).status is Status.PASS
    assert all("ECDSA" not in (o.fix or "") + (o.detail or "") for o in diagnosis.items)


async def test_only_a_refused_ed25519_key_is_told_to_make_an_ecdsa_key() -> None:
    secret, _ = ed25519_secret()
    unauthorized = httpx.Response(401, text="Unauthorized")
    exchange_fake = fake("coinbase", {"/api/v3/brokerage/key_permissions": unauthorized})
    diagnosis = await diagnose(
        "coinbase", Credentials(api_key=KEY_ID, api_secret=Secret(secret)), client=exchange_fake.client()
    )
    key = diagnosis.outcome(Item.KEY_KNOWN)
    assert key.status is Status.UNKNOWN and "ECDSA" in (key.fix or "") and "Ed25519" in (key.detail or "")
    assert len(exchange_fake.requests) == 1
