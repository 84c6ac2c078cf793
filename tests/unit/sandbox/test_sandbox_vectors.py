"""The verifiers reproduce the published vectors (reference §1) and the derived ones (§12)."""

from __future__ import annotations

import base64
import time

import jwt
import pytest

from bot.sandbox.binance import binance_signature, split_signature
from bot.sandbox.bitstamp import bitstamp_signature
from bot.sandbox.coinbase import CoinbaseAuthError, verify_coinbase_jwt
from bot.sandbox.gemini import gemini_signature
from bot.sandbox.kraken import kraken_signature
from bot.sandbox.kucoin import kucoin_passphrase, kucoin_signature
from bot.sandbox.okx import okx_signature, parse_okx_timestamp
from bot.sandbox.scenarios import SandboxKey, credentials_for


def test_kraken_published_vector() -> None:
    secret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    payload = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    expected = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    assert kraken_signature(secret, "/0/private/AddOrder", "1616492376594", payload) == expected


BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
            "&timestamp=1499827319559",
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
        ),
        (
            "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC"
            "&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
            "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3",
        ),
    ],
)
def test_binance_published_vectors(payload: str, expected: str) -> None:
    assert binance_signature(BINANCE_SECRET, payload) == expected


def test_binance_signature_is_cut_from_query_and_body_and_the_two_are_joined_without_separator() -> None:
    assert split_signature("symbol=LTCBTC&side=BUY", "type=LIMIT&timestamp=1&signature=ab") == (
        "symbol=LTCBTC&side=BUYtype=LIMIT&timestamp=1",
        "ab",
    )
    assert split_signature("timestamp=1&signature=ab", "") == ("timestamp=1", "ab")
    assert split_signature("timestamp=1", "") == ("timestamp=1", None)


def test_gemini_published_vector() -> None:
    body = '{\n    "request": "/v1/order/status",\n    "nonce": 123456,\n\n    "order_id": 18834\n}\n'
    payload = base64.b64encode(body.encode()).decode()
    assert payload == (
        "ewogICAgInJlcXVlc3QiOiAiL3YxL29yZGVyL3N0YXR1cyIsCiAgICAibm9uY2UiOiAxMjM0NTYsCgogICAgIm9yZGVyX2lkIjogMTg4MzQKfQo="
    )
    assert gemini_signature("1234abcd", payload) == (
        "337cc8b4ea692cfe65b4a85fcc9f042b2e3f702ac956fd098d600ab15705775017beae402be773ceee10719ff70d710f"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v5/account/balance?ccy=BTC", "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="),
        ("/api/v5/account/config", "Kr/8IrbDYujS4cg2KkmB+tO2HMUXxyayG6ZwNb4H/yA="),
    ],
)
def test_okx_derived_vectors(path: str, expected: str) -> None:
    secret = "22582BD0CFF14C41EDBF1AB98506286D"
    assert okx_signature(secret, "2020-12-08T09:08:57.715Z", "GET", path, "") == expected


def test_okx_timestamp_must_be_iso_with_milliseconds() -> None:
    assert parse_okx_timestamp("2020-12-08T09:08:57.715Z") == pytest.approx(1607418537.715)
    assert parse_okx_timestamp("1607418537715") is None
    assert parse_okx_timestamp("2020-12-08 09:08:57") is None


def test_kucoin_derived_vector() -> None:
    assert kucoin_signature("api_secret", "1700000000000", "GET", "/api/v1/user/api-key", "") == (
        "yiKCdx9/OYIXRN/VXJCnUofprOMXeV5Lnpk5RH1Wvsw="
    )
    assert kucoin_passphrase("api_secret", "api_passphrase") == "eNS/KpPhYZX0natiMyxtVdXb0JQDS0x+Eo1HCUkMkvM="


def test_bitstamp_derived_vector() -> None:
    signature = bitstamp_signature(
        "api_key",
        "api_secret",
        "POST",
        "www.bitstamp.net",
        "/api/v2/account_balances/",
        "",
        "application/x-www-form-urlencoded",
        "f93c979d-b00d-43a9-9b9c-fd4cd9547fa6",
        "1700000000000",
        "foo=bar",
    )
    assert signature == "6e0815bb4c04ed1507d334f5888da3bdf07501e62345818bb811315ac6d43079"


# Coinbase JWTs are ECDSA-signed with a random k, so there is no fixed vector (reference §12): sign one with
# PyJWT and check what the verifier accepts and refuses.
def _coinbase_key() -> SandboxKey:
    creds = credentials_for("coinbase", "valid")
    return SandboxKey("coinbase", "valid", creds["api_key"], creds["api_secret"])


def _token(key: SandboxKey, pem: str | None = None, **overrides: object) -> str:
    now = 1_700_000_000
    claims: dict[str, object] = {
        "sub": key.api_key,
        "iss": "cdp",
        "nbf": now,
        "exp": now + 120,
        "uri": "GET api.coinbase.com/api/v3/brokerage/accounts",
    }
    headers = {"kid": key.api_key, "nonce": "0123456789abcdef"}
    for name, value in overrides.items():
        if name.startswith("h_"):
            headers[name[2:]] = value  # type: ignore[assignment]
        else:
            claims[name] = value
    return jwt.encode(claims, pem or key.api_secret, algorithm="ES256", headers=headers)


def _verify(token: str, key: SandboxKey, now: float = 1_700_000_010) -> None:
    verify_coinbase_jwt(token, key, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts", now)


def _refusal(token: str, key: SandboxKey, now: float = 1_700_000_010) -> str | None:
    """Why the sandbox refuses `token`, or None when it accepts it."""
    try:
        _verify(token, key, now)
    except CoinbaseAuthError as refused:
        return str(refused)
    return None


def test_coinbase_jwt_signed_with_the_key_is_accepted_with_either_issuer() -> None:
    key = _coinbase_key()
    assert _refusal(_token(key), key) is None
    assert _refusal(_token(key, iss="coinbase-cloud", aud=["retail_rest_api_proxy"]), key) is None


@pytest.mark.parametrize(
    ("overrides", "now"),
    [
        ({}, 1_700_000_121),  # expired
        ({}, 1_699_999_990),  # not valid yet
        ({"exp": 1_700_000_000 + 3600}, 1_700_000_010),  # lives longer than two minutes
        ({"uri": "GET api.coinbase.com/api/v3/brokerage/key_permissions"}, 1_700_000_010),
        ({"uri": "POST api.coinbase.com/api/v3/brokerage/accounts"}, 1_700_000_010),
        ({"iss": "someone"}, 1_700_000_010),
        ({"sub": "organizations/x/apiKeys/y"}, 1_700_000_010),
        ({"h_kid": "organizations/x/apiKeys/y"}, 1_700_000_010),
        ({"h_nonce": ""}, 1_700_000_010),
    ],
)
def test_coinbase_jwt_problems_are_refused(overrides: dict[str, object], now: float) -> None:
    key = _coinbase_key()
    with pytest.raises(CoinbaseAuthError):
        _verify(_token(key, **overrides), key, now)


def test_coinbase_jwt_signed_by_another_ec_key_is_refused() -> None:
    key = _coinbase_key()
    other = credentials_for("coinbase", "wrong_secret")["api_secret"]
    with pytest.raises(CoinbaseAuthError, match="signature"):
        _verify(_token(key, pem=other), key)


def test_coinbase_jwt_made_by_ccxt_is_accepted() -> None:
    ccxt = pytest.importorskip("ccxt")
    key = _coinbase_key()
    exchange = ccxt.coinbase({"apiKey": key.api_key, "secret": key.api_secret})
    request = exchange.sign("brokerage/accounts", ["v3", "private"], "GET", {})
    token = request["headers"]["Authorization"].removeprefix("Bearer ")
    assert _refusal(token, key, now=time.time() + 1) is None
