"""Request signing: published vectors reproduced exactly (reference/exchanges.md §1), the derived vectors of
§12, ccxt's offline `sign()` as an independent oracle for the schemes without a published vector, and the
Coinbase JWT verified with the public half of a key made here."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.exchanges import binance, bitstamp, coinbase, gemini, kraken, kucoin, okx
from bot.exchanges._base import MillisNonce
from bot.secret import Secret

FIXED_MS = 1_700_000_000_000


def signed(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    """The request as the auth flow sends it (no transport involved)."""
    flow: Iterator[httpx.Request] = auth.sync_auth_flow(request)
    return next(flow)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: FIXED_MS / 1000)


# ------------------------------------------------------------------------------ published vectors (§1)

KRAKEN_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
KRAKEN_POST = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
KRAKEN_SIGN = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def test_kraken_published_vector() -> None:
    assert kraken.sign(KRAKEN_SECRET, "/0/private/AddOrder", "1616492376594", KRAKEN_POST) == KRAKEN_SIGN


def test_kraken_auth_puts_nonce_first_and_reproduces_the_published_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kraken, "next_nonce", lambda: 1616492376594)
    request = httpx.Request(
        "POST",
        "https://api.kraken.com/0/private/AddOrder",
        data={"ordertype": "limit", "pair": "XBTUSD", "price": "37500", "type": "buy", "volume": "1.25"},
    )
    out = signed(kraken.KrakenAuth("key", Secret(KRAKEN_SECRET)), request)
    assert out.content.decode() == KRAKEN_POST
    assert out.headers["API-Sign"] == KRAKEN_SIGN
    assert out.headers["API-Key"] == "key"
    assert out.headers["Content-Length"] == str(len(KRAKEN_POST))


def test_kraken_signs_the_api_path_without_the_sandbox_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kraken, "next_nonce", lambda: 1616492376594)
    request = httpx.Request("POST", "http://127.0.0.1:8765/kraken/0/private/Balance")
    out = signed(kraken.KrakenAuth("key", Secret(KRAKEN_SECRET), prefix="/kraken"), request)
    assert out.headers["API-Sign"] == kraken.sign(
        KRAKEN_SECRET, "/0/private/Balance", "1616492376594", "nonce=1616492376594"
    )


def test_nonce_is_milliseconds_and_strictly_increasing_within_the_process() -> None:
    nonce = MillisNonce(clock=lambda: FIXED_MS / 1000)
    assert [nonce(), nonce(), nonce()] == [FIXED_MS, FIXED_MS + 1, FIXED_MS + 2]
    later = MillisNonce(clock=lambda: 1.0)
    assert later() == 1000


BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.mark.parametrize(
    ("payload", "signature"),
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
    ids=["ascii", "unicode-percent-encoded"],
)
def test_binance_published_vectors(payload: str, signature: str) -> None:
    assert binance.sign(BINANCE_SECRET, payload) == signature


def test_binance_auth_percent_encodes_unicode_and_signs_query_plus_body(frozen_clock: None) -> None:
    request = httpx.Request("GET", "https://api.binance.com/api/v3/order", params={"symbol": "１２３４５６"})
    out = signed(binance.BinanceAuth("apikey", Secret(BINANCE_SECRET)), request)
    query = out.url.query.decode()
    payload, _, signature = query.rpartition("&signature=")
    assert payload == (
        "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"
        f"&recvWindow={binance.RECV_WINDOW_MS}&timestamp={FIXED_MS}"
    )
    assert signature == binance.sign(BINANCE_SECRET, payload)
    assert out.headers["X-MBX-APIKEY"] == "apikey"


GEMINI_PAYLOAD = b'{\n    "request": "/v1/order/status",\n    "nonce": 123456,\n\n    "order_id": 18834\n}\n'
GEMINI_B64 = (
    "ewogICAgInJlcXVlc3QiOiAiL3YxL29yZGVyL3N0YXR1cyIsCiAgICAibm9uY2UiOiAxMjM0NTYsCgogICAgIm9yZGVyX2lkIjogMTg4"
    "MzQKfQo="
)
GEMINI_SIGNATURE = (
    "337cc8b4ea692cfe65b4a85fcc9f042b2e3f702ac956fd098d600ab15705775017beae402be773ceee10719ff70d710f"
)


def test_gemini_published_vector() -> None:
    assert gemini.encode_payload(GEMINI_PAYLOAD) == GEMINI_B64
    assert gemini.sign("1234abcd", GEMINI_B64) == GEMINI_SIGNATURE


def test_gemini_auth_moves_params_into_the_signed_payload_and_sends_no_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gemini, "next_nonce", lambda: 123456)
    request = httpx.Request("POST", "http://127.0.0.1:9/gemini/v1/transfers", json={"limit_transfers": 1})
    out = signed(gemini.GeminiAuth("account-x", Secret("1234abcd"), prefix="/gemini"), request)
    encoded = out.headers["X-GEMINI-PAYLOAD"]
    assert json.loads(base64.b64decode(encoded)) == {
        "request": "/v1/transfers",
        "nonce": 123456,
        "limit_transfers": 1,
    }
    assert out.headers["X-GEMINI-SIGNATURE"] == gemini.sign("1234abcd", encoded)
    assert out.content == b""
    assert out.headers["Content-Type"] == "text/plain"


# ------------------------------------------------------------------------------- derived vectors (§12)

OKX_SECRET = "22582BD0CFF14C41EDBF1AB98506286D"
OKX_TS = "2020-12-08T09:08:57.715Z"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v5/account/balance?ccy=BTC", "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="),
        ("/api/v5/account/config", "Kr/8IrbDYujS4cg2KkmB+tO2HMUXxyayG6ZwNb4H/yA="),
    ],
)
def test_okx_derived_vectors(path: str, expected: str) -> None:
    assert okx.sign(OKX_SECRET, OKX_TS, "GET", path) == expected


def test_okx_timestamp_is_iso_utc_with_milliseconds() -> None:
    from datetime import datetime, timezone

    assert okx.timestamp(datetime(2020, 12, 8, 9, 8, 57, 715_123, tzinfo=timezone.utc)) == OKX_TS


def test_kucoin_derived_vector() -> None:
    assert kucoin.sign("api_secret", "1700000000000", "GET", "/api/v1/user/api-key") == (
        "yiKCdx9/OYIXRN/VXJCnUofprOMXeV5Lnpk5RH1Wvsw="
    )
    assert (
        kucoin.sign_passphrase("api_secret", "api_passphrase")
        == "eNS/KpPhYZX0natiMyxtVdXb0JQDS0x+Eo1HCUkMkvM="
    )


def test_bitstamp_derived_vector() -> None:
    assert (
        bitstamp.sign(
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
        == "6e0815bb4c04ed1507d334f5888da3bdf07501e62345818bb811315ac6d43079"
    )


# ---------------------------------------------------------------------------------------- ccxt oracle


def _ccxt(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = pytest.importorskip(f"ccxt.{name}")
    exchange = getattr(module, name)(
        {"apiKey": "api_key", "secret": "api_secret", "password": "api_passphrase"}
    )
    monkeypatch.setattr(exchange, "milliseconds", lambda: FIXED_MS)
    monkeypatch.setattr(exchange, "nonce", lambda: FIXED_MS)
    monkeypatch.setattr(exchange, "uuid", lambda: "f93c979d-b00d-43a9-9b9c-fd4cd9547fa6")
    return exchange


def test_okx_matches_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _ccxt("okx", monkeypatch).sign("account/config", "private", "GET", {})["headers"]
    monkeypatch.setattr(okx, "timestamp", lambda: expected["OK-ACCESS-TIMESTAMP"])
    request = httpx.Request("GET", "https://www.okx.com/api/v5/account/config")
    out = signed(okx.OkxAuth("api_key", Secret("api_secret"), Secret("api_passphrase")), request)
    for header in ("OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE"):
        assert out.headers[header] == expected[header]


def test_kucoin_v2_matches_ccxt(monkeypatch: pytest.MonkeyPatch, frozen_clock: None) -> None:
    expected = _ccxt("kucoin", monkeypatch).sign("user/api-key", "private", "GET", {})["headers"]
    request = httpx.Request("GET", "https://api.kucoin.com/api/v1/user/api-key")
    auth = kucoin.KucoinAuth("api_key", Secret("api_secret"), Secret("api_passphrase"), "2")
    out = signed(auth, request)
    for header in (
        "KC-API-KEY",
        "KC-API-SIGN",
        "KC-API-TIMESTAMP",
        "KC-API-PASSPHRASE",
        "KC-API-KEY-VERSION",
    ):
        assert out.headers[header] == expected[header]


def test_kucoin_v3_signs_the_passphrase_like_v2_and_v1_sends_it_plain(frozen_clock: None) -> None:
    request = httpx.Request("GET", "https://api.kucoin.com/api/v1/accounts")
    v3 = signed(kucoin.KucoinAuth("k", Secret("api_secret"), Secret("api_passphrase"), "3"), request)
    assert v3.headers["KC-API-PASSPHRASE"] == kucoin.sign_passphrase("api_secret", "api_passphrase")
    assert v3.headers["KC-API-KEY-VERSION"] == "3"
    v1 = signed(kucoin.KucoinAuth("k", Secret("api_secret"), Secret("api_passphrase"), "1"), request)
    assert v1.headers["KC-API-PASSPHRASE"] == "api_passphrase"


def test_bitstamp_matches_ccxt(monkeypatch: pytest.MonkeyPatch, frozen_clock: None) -> None:
    expected = _ccxt("bitstamp", monkeypatch).sign("user_transactions/", "private", "POST", {"limit": "1"})
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID("f93c979d-b00d-43a9-9b9c-fd4cd9547fa6"))
    request = httpx.Request("POST", "https://www.bitstamp.net/api/v2/user_transactions/", data={"limit": "1"})
    out = signed(bitstamp.BitstampAuth("api_key", Secret("api_secret")), request)
    assert out.content.decode() == expected["body"]
    for header, value in expected["headers"].items():
        assert out.headers[header] == value


def test_bitstamp_signs_the_host_in_use_and_no_content_type_without_a_body(frozen_clock: None) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:8765/bitstamp/api/v2/account_balances/")
    out = signed(bitstamp.BitstampAuth("api_key", Secret("api_secret"), prefix="/bitstamp"), request)
    assert "Content-Type" not in out.headers
    assert out.headers["X-Auth-Signature"] == bitstamp.sign(
        "api_key",
        "api_secret",
        "POST",
        "127.0.0.1:8765",
        "/api/v2/account_balances/",
        "",
        "",
        out.headers["X-Auth-Nonce"],
        str(FIXED_MS),
        "",
    )


# ---------------------------------------------------------------------------------------- Coinbase JWT


def test_coinbase_jwt_is_es256_with_kid_nonce_and_uri_verified_by_the_public_key() -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    key_name = (
        "organizations/11111111-2222-4333-8444-555555555555/apiKeys/66666666-7777-4888-9999-000000000000"
    )
    request = httpx.Request("GET", "http://127.0.0.1:8765/coinbase/api/v3/brokerage/accounts?limit=250")
    out = signed(coinbase.CoinbaseAuth(key_name, Secret(pem), prefix="/coinbase"), request)

    scheme, _, token = out.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == key_name
    assert len(header["nonce"]) == 32
    claims = jwt.decode(token, private_key.public_key(), algorithms=["ES256"], options={"verify_aud": False})
    assert claims["sub"] == key_name
    assert claims["iss"] == "cdp"
    assert claims["exp"] - claims["nbf"] == 120
    # Method, host[:port] of the base URL in use, the API path without prefix or query (§2).
    assert claims["uri"] == "GET 127.0.0.1:8765/api/v3/brokerage/accounts"

    again = signed(coinbase.CoinbaseAuth(key_name, Secret(pem)), request)
    assert jwt.get_unverified_header(again.headers["Authorization"][7:])["nonce"] != header["nonce"]


def test_query_strings_are_kept_for_schemes_that_sign_them(frozen_clock: None) -> None:
    request = httpx.Request(
        "GET", "http://127.0.0.1:8765/okx/api/v5/account/bills-archive", params={"limit": "1"}
    )
    out = signed(okx.OkxAuth("k", Secret(OKX_SECRET), Secret("p"), prefix="/okx"), request)
    ts = out.headers["OK-ACCESS-TIMESTAMP"]
    assert out.headers["OK-ACCESS-SIGN"] == okx.sign(
        OKX_SECRET, ts, "GET", "/api/v5/account/bills-archive?limit=1"
    )
    assert dict(parse_qsl(out.url.query.decode())) == {"limit": "1"}
