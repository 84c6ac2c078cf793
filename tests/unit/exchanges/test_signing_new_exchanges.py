"""Signing for Bybit, Gate, Crypto.com and Bitfinex: the derived vectors of reference/exchanges.md §12 (Gate,
Crypto.com, Bitfinex), and ccxt's offline `sign()` as an independent oracle for every one of them. The ccxt
outputs are also pinned as literal vectors, so the tests still hold where ccxt is not installed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.exchanges import bitfinex, bybit, crypto_com, gate_io
from bot.secret import Secret

FIXED_MS = 1_700_000_000_000


def signed(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    flow: Iterator[httpx.Request] = auth.sync_auth_flow(request)
    return next(flow)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: FIXED_MS / 1000)


def _ccxt(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = pytest.importorskip(f"ccxt.{name}")
    exchange = getattr(module, name)({"apiKey": "api_key", "secret": "api_secret"})
    monkeypatch.setattr(exchange, "milliseconds", lambda: FIXED_MS)
    monkeypatch.setattr(exchange, "seconds", lambda: FIXED_MS // 1000)
    monkeypatch.setattr(exchange, "nonce", lambda: FIXED_MS)
    return exchange


# ------------------------------------------------------------------------------------------------ Bybit


def test_bybit_sign_is_hmac_sha256_of_timestamp_key_window_and_query() -> None:
    import hashlib
    import hmac

    expected = hmac.new(
        b"api_secret", b"1700000000000api_key5000accountType=UNIFIED", hashlib.sha256
    ).hexdigest()
    assert bybit.sign("api_secret", "1700000000000", "api_key", "5000", "accountType=UNIFIED") == expected


def test_bybit_matches_ccxt_for_a_get_with_query(monkeypatch: pytest.MonkeyPatch, frozen_clock: None) -> None:
    exchange = _ccxt("bybit", monkeypatch)
    exchange.options["recvWindow"] = 5000
    expected = exchange.sign("v5/account/wallet-balance", "private", "GET", {"accountType": "UNIFIED"})
    request = httpx.Request("GET", "https://api.bybit.com/v5/account/wallet-balance?accountType=UNIFIED")
    out = signed(bybit.BybitAuth("api_key", Secret("api_secret")), request)
    for header in ("X-BAPI-API-KEY", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW", "X-BAPI-SIGN"):
        assert out.headers[header] == str(expected["headers"][header])


# ccxt 4.4.82 `bybit.sign()` for these inputs (the tests below recompute them when ccxt is installed).
BYBIT_WALLET_SIGN = "eb8219ef56a21b149e3ef8a6f2b33325040c3ff883ebc555518d0ab3b20e2f45"
BYBIT_QUERY_API_SIGN = "a22053b265d65f8e8f929340b8f52d4f79f2e4547e4f678db5fdc9f5dbb3fb51"


def test_bybit_query_api_vector(frozen_clock: None) -> None:
    request = httpx.Request("GET", "https://api.bybit.com/v5/user/query-api")
    out = signed(bybit.BybitAuth("api_key", Secret("api_secret")), request)
    assert out.headers["X-BAPI-SIGN"] == BYBIT_QUERY_API_SIGN
    wallet = httpx.Request("GET", "https://api.bybit.com/v5/account/wallet-balance?accountType=UNIFIED")
    assert signed(bybit.BybitAuth("api_key", Secret("api_secret")), wallet).headers["X-BAPI-SIGN"] == (
        BYBIT_WALLET_SIGN
    )
    assert out.headers["X-BAPI-TIMESTAMP"] == str(FIXED_MS)


def test_bybit_query_api_matches_ccxt(monkeypatch: pytest.MonkeyPatch, frozen_clock: None) -> None:
    exchange = _ccxt("bybit", monkeypatch)
    exchange.options["recvWindow"] = 5000
    expected = exchange.sign("v5/user/query-api", "private", "GET", {})
    request = httpx.Request("GET", "https://api.bybit.com/v5/user/query-api")
    out = signed(bybit.BybitAuth("api_key", Secret("api_secret")), request)
    assert out.headers["X-BAPI-SIGN"] == expected["headers"]["X-BAPI-SIGN"] == BYBIT_QUERY_API_SIGN


# ------------------------------------------------------------------------------------------------- Gate

GATE_DETAIL_SIGN = (
    "5f64b463845a5383d4faf59efa4a82db511505c067cf40e3baa832d64b1b8e2f7878b51edd7aeff00d31ab488509427c356bf193"
    "541ccc79bb8b1999acd0db39"
)


def test_gate_derived_vector() -> None:
    assert (
        gate_io.sign("api_secret", "GET", "/api/v4/account/detail", "", "", "1700000000") == GATE_DETAIL_SIGN
    )


def test_gate_auth_signs_the_unprefixed_path(frozen_clock: None) -> None:
    request = httpx.Request("GET", "http://127.0.0.1:8765/gate_io/api/v4/account/detail")
    out = signed(gate_io.GateAuth("api_key", Secret("api_secret"), prefix="/gate_io"), request)
    assert out.headers["SIGN"] == GATE_DETAIL_SIGN
    assert out.headers["Timestamp"] == "1700000000"
    assert out.headers["KEY"] == "api_key"


def test_gate_matches_ccxt_with_a_query(monkeypatch: pytest.MonkeyPatch, frozen_clock: None) -> None:
    exchange = _ccxt("gate", monkeypatch)
    expected = exchange.sign("deposits", ["private", "wallet"], "GET", {"limit": 1})
    request = httpx.Request("GET", "https://api.gateio.ws/api/v4/wallet/deposits?limit=1")
    out = signed(gate_io.GateAuth("api_key", Secret("api_secret")), request)
    assert out.headers["SIGN"] == expected["headers"]["SIGN"]
    assert out.headers["Timestamp"] == expected["headers"]["Timestamp"]


# ------------------------------------------------------------------------------------------- Crypto.com

CRYPTO_COM_BALANCE_SIG = "dc3f36afda86465151b28fcff995c7c646df76118da3a32049e18ea09c1af2ad"


def test_crypto_com_derived_vector() -> None:
    sig = crypto_com.sign("api_secret", "private/user-balance", str(FIXED_MS), "api_key", {}, str(FIXED_MS))
    assert sig == CRYPTO_COM_BALANCE_SIG


def test_crypto_com_param_string_sorts_and_flattens() -> None:
    params = {"b": "2", "a": [{"y": 1, "x": "0"}, "z"], "c": None}
    assert crypto_com.param_string(params) == "ax0y1zb2cNone"


@pytest.mark.parametrize("params", [{}, {"limit": 1}, {"instrument_name": "BTC_USD", "end_time": 5}])
def test_crypto_com_matches_ccxt(monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]) -> None:
    exchange = _ccxt("cryptocom", monkeypatch)
    expected = json.loads(
        exchange.sign("private/get-trades", ["v1", "private"], "POST", dict(params))["body"]
    )
    monkeypatch.setattr(crypto_com, "next_nonce", lambda: FIXED_MS)
    monkeypatch.setattr(crypto_com, "_ids", iter([FIXED_MS]))
    request = httpx.Request("POST", "https://api.crypto.com/exchange/v1/private/get-trades", json=params)
    body = json.loads(signed(crypto_com.CryptoComAuth("api_key", Secret("api_secret")), request).content)
    assert body["sig"] == expected["sig"]
    assert body["method"] == "private/get-trades" and body["params"] == params
    assert str(body["nonce"]) == str(expected["nonce"]) and str(body["id"]) == str(expected["id"])


# --------------------------------------------------------------------------------------------- Bitfinex

BITFINEX_PERMISSIONS_SIGN = (
    "a22d755af7ce59d4d182fc72b3689ee6328e6237c39c9cb4af08e0794c9d62498da714356ce3646cb9234aee7ba01fcd"
)


def test_bitfinex_derived_vector() -> None:
    assert bitfinex.sign("api_secret", "v2/auth/r/permissions", "1700000000000000", "{}") == (
        BITFINEX_PERMISSIONS_SIGN
    )


def test_bitfinex_matches_ccxt_and_sends_a_millisecond_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = _ccxt("bitfinex", monkeypatch)
    expected = exchange.sign("auth/r/permissions", "private", "POST", {})
    monkeypatch.setattr(bitfinex, "next_nonce", lambda: FIXED_MS)
    request = httpx.Request("POST", "http://127.0.0.1:8765/bitfinex/v2/auth/r/permissions", json={})
    out = signed(bitfinex.BitfinexAuth("api_key", Secret("api_secret"), prefix="/bitfinex"), request)
    assert out.headers["bfx-nonce"] == str(FIXED_MS) == expected["headers"]["bfx-nonce"]
    assert out.headers["bfx-signature"] == expected["headers"]["bfx-signature"]
    assert out.content == b"{}"


def test_bitfinex_nonce_never_exceeds_the_millisecond_scale() -> None:
    # §0.2: a microsecond nonce would break every millisecond client of the same key for good.
    import time

    assert bitfinex.next_nonce() < (time.time() + 60) * 1000
