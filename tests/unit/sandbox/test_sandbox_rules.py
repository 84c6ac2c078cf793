"""Timestamp windows, nonce rules and each exchange's error answers, through `handle()` without sockets."""

from __future__ import annotations

import pytest

from bot.sandbox._common import SandboxRequest, SandboxResponse
from bot.sandbox.binance import BinanceSandbox
from bot.sandbox.bitstamp import BitstampSandbox
from bot.sandbox.coinbase import CoinbaseSandbox
from bot.sandbox.gemini import GeminiSandbox
from bot.sandbox.kraken import KrakenSandbox
from bot.sandbox.kucoin import KucoinSandbox
from bot.sandbox.okx import OkxSandbox
from bot.sandbox.scenarios import credentials_for
from tests.support.clock import FakeClock
from tests.unit.sandbox import signers

NOW = 1_700_000_000.0


def _creds(exchange: str, scenario: str = "valid") -> dict[str, str]:
    return credentials_for(exchange, scenario)


# --- Kraken -----------------------------------------------------------------------------------------------


def _kraken(
    sandbox: KrakenSandbox, nonce: int, scenario: str = "valid", path: str = "/0/private/Balance"
) -> SandboxResponse:
    creds = _creds("kraken", scenario)
    headers, body = signers.kraken(creds["api_key"], creds["api_secret"], path, nonce)
    return sandbox.handle(SandboxRequest("POST", path, headers=headers, body=body.encode()))


def test_kraken_accepts_increasing_nonces_and_refuses_a_reused_or_lower_one() -> None:
    sandbox = KrakenSandbox(clock=FakeClock(NOW))
    assert _kraken(sandbox, 1000).json()["error"] == []
    assert _kraken(sandbox, 1001).json()["error"] == []
    assert _kraken(sandbox, 1001).json() == {"error": ["EAPI:Invalid nonce"], "result": {}}
    assert _kraken(sandbox, 999).json()["error"] == ["EAPI:Invalid nonce"]


def test_kraken_wrong_secret_does_not_use_up_the_nonce() -> None:
    sandbox = KrakenSandbox(clock=FakeClock(NOW))
    assert _kraken(sandbox, 5000, "wrong_secret").json()["error"] == ["EAPI:Invalid signature"]
    assert _kraken(sandbox, 5000).json()["error"] == []


def test_kraken_nonce_memory_is_per_key() -> None:
    sandbox = KrakenSandbox(clock=FakeClock(NOW))
    assert _kraken(sandbox, 5000).json()["error"] == []
    assert _kraken(sandbox, 10, "empty_account").json()["error"] == []


def test_kraken_errors_are_http_200_with_an_error_list() -> None:
    sandbox = KrakenSandbox(clock=FakeClock(NOW))
    response = _kraken(sandbox, 1, "unknown_key")
    assert (response.status, response.json()) == (200, {"error": ["EAPI:Invalid key"], "result": {}})


def test_kraken_signature_covers_the_path() -> None:
    creds = _creds("kraken")
    sandbox = KrakenSandbox(clock=FakeClock(NOW))
    headers, body = signers.kraken(creds["api_key"], creds["api_secret"], "/0/private/Ledgers", 7)
    response = sandbox.handle(
        SandboxRequest("POST", "/0/private/Balance", headers=headers, body=body.encode())
    )
    assert response.json()["error"] == ["EAPI:Invalid signature"]


# --- Binance ----------------------------------------------------------------------------------------------


def _binance(
    clock: FakeClock, timestamp_ms: int, scenario: str = "valid", recv_window: int | None = None
) -> SandboxResponse:
    creds = _creds("binance", scenario)
    headers, query = signers.binance(creds["api_key"], creds["api_secret"], "", timestamp_ms, recv_window)
    return BinanceSandbox(clock=clock).handle(
        SandboxRequest("GET", "/sapi/v1/account/apiRestrictions", raw_query=query, headers=headers)
    )


@pytest.mark.parametrize(
    ("offset_ms", "recv_window", "code"),
    [
        (-4999, None, None),
        (-5001, None, -1021),  # default recvWindow 5000
        (-59000, 60000, None),
        (-1000, 60001, -1131),
        (999, None, None),
        (1000, None, -1021),  # 1000 ms ahead of the server
    ],
)
def test_binance_timestamp_window(offset_ms: int, recv_window: int | None, code: int | None) -> None:
    clock = FakeClock(NOW)
    response = _binance(clock, int(NOW * 1000) + offset_ms, recv_window=recv_window)
    if code is None:
        assert response.status == 200, response.body
    else:
        assert response.json()["code"] == code


def test_binance_wrong_secret_is_1022_and_bad_key_shape_is_2014() -> None:
    clock = FakeClock(NOW)
    response = _binance(clock, int(NOW * 1000), "wrong_secret")
    assert (response.status, response.json()["code"]) == (400, -1022)
    headers, query = signers.binance("short-key", "x", "", int(NOW * 1000))
    response = BinanceSandbox(clock=clock).handle(
        SandboxRequest("GET", "/api/v3/account", raw_query=query, headers=headers)
    )
    assert (response.status, response.json()["code"]) == (401, -2014)


def test_binance_my_trades_needs_a_symbol() -> None:
    creds = _creds("binance")
    sandbox = BinanceSandbox(clock=FakeClock(NOW))
    headers, query = signers.binance(creds["api_key"], creds["api_secret"], "", int(NOW * 1000))
    response = sandbox.handle(SandboxRequest("GET", "/api/v3/myTrades", raw_query=query, headers=headers))
    assert response.json()["code"] == -1102
    headers, query = signers.binance(creds["api_key"], creds["api_secret"], "symbol=BTCUSDT", int(NOW * 1000))
    response = sandbox.handle(SandboxRequest("GET", "/api/v3/myTrades", raw_query=query, headers=headers))
    assert response.json()[0]["symbol"] == "BTCUSDT"


# --- KuCoin -----------------------------------------------------------------------------------------------


def _kucoin(
    clock: FakeClock, timestamp_ms: int, scenario: str = "valid", version: str = "2"
) -> SandboxResponse:
    creds = _creds("kucoin", scenario)
    headers = signers.kucoin(
        creds["api_key"],
        creds["api_secret"],
        creds["passphrase"],
        "GET",
        "/api/v1/user/api-key",
        timestamp_ms,
        version,
    )
    return KucoinSandbox(clock=clock).handle(SandboxRequest("GET", "/api/v1/user/api-key", headers=headers))


@pytest.mark.parametrize(("offset_ms", "ok"), [(-5000, True), (5000, True), (-5001, False), (5001, False)])
def test_kucoin_timestamp_window_is_five_seconds(offset_ms: int, ok: bool) -> None:
    response = _kucoin(FakeClock(NOW), int(NOW * 1000) + offset_ms)
    assert response.json()["code"] == ("200000" if ok else "400002")


@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_kucoin_passphrase_is_hmacd_from_version_2(version: str) -> None:
    assert _kucoin(FakeClock(NOW), int(NOW * 1000), version=version).json()["code"] == "200000"


@pytest.mark.parametrize(("scenario", "code"), [("wrong_passphrase", "400004"), ("wrong_secret", "400005")])
def test_kucoin_wrong_passphrase_and_secret(scenario: str, code: str) -> None:
    response = _kucoin(FakeClock(NOW), int(NOW * 1000), scenario)
    assert (response.status, response.json()["code"]) == (401, code)


# --- OKX --------------------------------------------------------------------------------------------------


def _okx(
    clock: FakeClock, epoch_s: float, extra: dict[str, str] | None = None, scenario: str = "valid"
) -> SandboxResponse:
    creds = _creds("okx", scenario)
    headers = signers.okx(
        creds["api_key"], creds["api_secret"], creds["passphrase"], "GET", "/api/v5/account/config", epoch_s
    )
    return OkxSandbox(clock=clock).handle(
        SandboxRequest("GET", "/api/v5/account/config", headers={**headers, **(extra or {})})
    )


@pytest.mark.parametrize(("offset_s", "code"), [(-29.9, "0"), (29.9, "0"), (-30.5, "50102"), (31, "50102")])
def test_okx_timestamp_window_is_thirty_seconds(offset_s: float, code: str) -> None:
    assert _okx(FakeClock(NOW), NOW + offset_s).json()["code"] == code


def test_okx_demo_trading_header_is_the_wrong_environment() -> None:
    assert _okx(FakeClock(NOW), NOW, {"x-simulated-trading": "1"}).json()["code"] == "50101"


def test_okx_unix_timestamp_is_invalid() -> None:
    assert _okx(FakeClock(NOW), NOW, {"OK-ACCESS-TIMESTAMP": str(int(NOW))}).json()["code"] == "50112"


# --- Gemini -----------------------------------------------------------------------------------------------


def _gemini(
    sandbox: GeminiSandbox, nonce: int, path: str = "/v1/roles", signed_path: str | None = None
) -> SandboxResponse:
    creds = _creds("gemini")
    headers = signers.gemini(creds["api_key"], creds["api_secret"], signed_path or path, nonce)
    return sandbox.handle(SandboxRequest("POST", path, headers=headers))


def test_gemini_session_nonce_must_increase() -> None:
    sandbox = GeminiSandbox(clock=FakeClock(NOW))
    assert _gemini(sandbox, 10).status == 200
    response = _gemini(sandbox, 10)
    assert (response.status, response.json()["reason"]) == (400, "InvalidNonce")


def test_gemini_payload_request_must_name_the_endpoint() -> None:
    response = _gemini(GeminiSandbox(clock=FakeClock(NOW)), 1, "/v1/roles", signed_path="/v1/balances")
    assert response.json()["reason"] == "EndpointMismatch"


# --- Bitstamp ---------------------------------------------------------------------------------------------


def _bitstamp(
    sandbox: BitstampSandbox, timestamp_ms: int, nonce: str | None = None, body: str = "offset=0"
) -> SandboxResponse:
    creds = _creds("bitstamp")
    path = "/api/v2/account_balances/"
    headers, body = signers.bitstamp(
        creds["api_key"], creds["api_secret"], "localhost:1", path, timestamp_ms, body, nonce
    )
    return sandbox.handle(
        SandboxRequest("POST", path, headers=headers, body=body.encode(), host="localhost:1")
    )


def test_bitstamp_nonce_is_single_use_within_150_seconds() -> None:
    clock = FakeClock(NOW)
    sandbox = BitstampSandbox(clock=clock)
    nonce = "f93c979d-b00d-43a9-9b9c-fd4cd9547fa6"
    assert _bitstamp(sandbox, int(clock.now * 1000), nonce).status == 200
    response = _bitstamp(sandbox, int(clock.now * 1000), nonce)
    assert (response.status, response.json()["code"], response.json()["reason"]) == (
        403,
        "API0004",
        "Invalid nonce",
    )


@pytest.mark.parametrize(("offset_s", "ok"), [(-149, True), (149, True), (-151, False), (151, False)])
def test_bitstamp_timestamp_window_is_150_seconds(offset_s: int, ok: bool) -> None:
    response = _bitstamp(BitstampSandbox(clock=FakeClock(NOW)), int((NOW + offset_s) * 1000))
    assert response.status == (200 if ok else 403)


def test_bitstamp_empty_body_is_signed_without_content_type_and_answers_with_a_server_signature() -> None:
    response = _bitstamp(BitstampSandbox(clock=FakeClock(NOW)), int(NOW * 1000), body="")
    assert response.status == 200
    assert dict(response.headers)["X-Server-Auth-Signature"]


# --- Coinbase ---------------------------------------------------------------------------------------------


def _coinbase(
    host: str = "localhost:1", signed_host: str = "localhost:1", extra: dict[str, str] | None = None
) -> SandboxResponse:
    creds = _creds("coinbase")
    path = "/api/v3/brokerage/key_permissions"
    headers = signers.coinbase_jwt(creds["api_key"], creds["api_secret"], "GET", signed_host, path, int(NOW))
    return CoinbaseSandbox(clock=FakeClock(NOW + 1)).handle(
        SandboxRequest("GET", path, headers={**headers, **(extra or {})}, host=host)
    )


def test_coinbase_jwt_is_bound_to_the_host() -> None:
    assert _coinbase().status == 200
    response = _coinbase(signed_host="api.coinbase.com")
    assert (response.status, response.body) == (401, b"Unauthorized\n")


def test_coinbase_legacy_hmac_headers_get_401() -> None:
    legacy = {
        "CB-ACCESS-KEY": "g3BLnUYMOQsIo9V5",
        "CB-ACCESS-SIGN": "00",
        "CB-ACCESS-TIMESTAMP": str(int(NOW)),
    }
    response = CoinbaseSandbox(clock=FakeClock(NOW)).handle(
        SandboxRequest("GET", "/api/v3/brokerage/accounts", headers=legacy)
    )
    assert (response.status, response.content_type) == (401, "text/plain")


# --- shared -----------------------------------------------------------------------------------------------


def test_slow_key_answers_with_the_configured_delay() -> None:
    response = _okx_scenario("slow", slow_latency_s=0.25)
    assert (response.status, response.delay_s) == (200, 0.25)


def _okx_scenario(scenario: str, slow_latency_s: float) -> SandboxResponse:
    creds = _creds("okx", scenario)
    headers = signers.okx(
        creds["api_key"], creds["api_secret"], creds["passphrase"], "GET", "/api/v5/account/config", NOW
    )
    sandbox = OkxSandbox(clock=FakeClock(NOW), slow_latency_s=slow_latency_s)
    return sandbox.handle(SandboxRequest("GET", "/api/v5/account/config", headers=headers))


def test_unknown_path_gets_the_exchanges_not_found() -> None:
    assert KrakenSandbox().handle(SandboxRequest("POST", "/0/private/Nope")).status == 404
    assert OkxSandbox().handle(SandboxRequest("GET", "/api/v5/nope")).status == 404
