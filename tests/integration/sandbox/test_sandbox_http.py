"""The sandbox over real HTTP, with requests signed by ccxt's offline `sign()` (Kraken, Binance, Binance.US,
KuCoin, OKX, Gemini, Bybit, Gate, Crypto.com, Bitfinex) or by the test's own signers (Coinbase's host-bound
JWT, Bitstamp's host-bound HMAC).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bot.sandbox.scenarios import BLOCKED_IP, SANDBOX_EXCHANGES, credentials_for, scenarios_for
from bot.sandbox.server import serve_in_thread
from tests.integration.sandbox.conftest import SLOW_LATENCY_S
from tests.unit.sandbox import signers

pytestmark = pytest.mark.integration

ccxt = pytest.importorskip("ccxt")

CCXT_IDS = {
    "kraken": "kraken",
    "binance": "binance",
    "binance_us": "binanceus",
    "kucoin": "kucoin",
    "okx": "okx",
    "gemini": "gemini",
    "bybit": "bybit",
    "gate_io": "gate",
    "crypto_com": "cryptocom",
    "bitfinex": "bitfinex",
}

# (cheap read, permission endpoint, history) per exchange: ccxt (path, api, method, params) or the API path.
ENDPOINTS: dict[str, list[Any]] = {
    "kraken": [
        ("Balance", "private", "POST", {}),
        ("GetApiKeyInfo", "private", "POST", {}),
        ("Ledgers", "private", "POST", {}),
    ],
    "binance": [
        ("account", "private", "GET", {}),
        ("account/apiRestrictions", "sapi", "GET", {}),
        ("myTrades", "private", "GET", {"symbol": "BTCUSDT"}),
    ],
    "kucoin": [
        ("accounts", "private", "GET", {}),
        ("user/api-key", "private", "GET", {}),
        ("accounts/ledgers", "private", "GET", {}),
    ],
    "okx": [
        ("account/balance", "private", "GET", {}),
        ("account/config", "private", "GET", {}),
        ("account/bills-archive", "private", "GET", {}),
    ],
    "gemini": [
        ("v1/balances", "private", "POST", {}),
        ("v1/roles", "private", "POST", {}),
        ("v1/mytrades", "private", "POST", {}),
    ],
    "coinbase": [
        "/api/v3/brokerage/accounts",
        "/api/v3/brokerage/key_permissions",
        "/api/v3/brokerage/orders/historical/fills",
    ],
    "bitstamp": ["/api/v2/account_balances/", "/api/v2/user_transactions/"],
    "bybit": [
        ("v5/account/wallet-balance", "private", "GET", {"accountType": "UNIFIED"}),
        ("v5/user/query-api", "private", "GET", {}),
        ("v5/account/transaction-log", "private", "GET", {"limit": 50}),
    ],
    "gate_io": [
        ("accounts", ["private", "spot"], "GET", {}),
        ("main_keys", ["private", "account"], "GET", {}),
        ("account_book", ["private", "spot"], "GET", {"limit": 1000}),
    ],
    "crypto_com": [
        ("private/user-balance", ["v1", "private"], "POST", {}),
        ("private/get-transactions", ["v1", "private"], "POST", {"limit": 100}),
    ],
    "bitfinex": [
        ("auth/r/wallets", "private", "POST", {}),
        ("auth/r/permissions", "private", "POST", {}),
        ("auth/r/ledgers/hist", "private", "POST", {"limit": 2500}),
    ],
}
ENDPOINTS["binance_us"] = ENDPOINTS["binance"]

_LAST_NONCE = [0]


def _next_nonce() -> int:
    """Milliseconds, strictly increasing: Kraken and Gemini nonces must grow per key."""
    _LAST_NONCE[0] = max(_LAST_NONCE[0] + 1, int(time.time() * 1000))
    return _LAST_NONCE[0]


def _ccxt_request(
    base: str, exchange: str, creds: dict[str, str], call: tuple[Any, ...], **patch: Any
) -> httpx.Response:
    client = getattr(ccxt, CCXT_IDS[exchange])(
        {"apiKey": creds["api_key"], "secret": creds["api_secret"], "password": creds.get("passphrase")}
    )
    client.nonce = _next_nonce
    for name, value in patch.items():
        setattr(client, name, value)
    path, api, method, params = call
    signed = client.sign(path, api, method, dict(params))
    url = urlsplit(signed["url"])
    target = f"{base}/{exchange}{url.path}" + (f"?{url.query}" if url.query else "")
    return httpx.request(method, target, headers=signed["headers"], content=signed["body"])


def call(
    base: str,
    exchange: str,
    scenario: str,
    endpoint: int = 0,
    creds: dict[str, str] | None = None,
    **patch: Any,
) -> httpx.Response:
    """Sign and send one request for this exchange's endpoint (0 cheap, 1 permissions, 2 history), with the
    scenario's credentials or `creds`."""
    creds = creds or credentials_for(exchange, scenario)
    target = ENDPOINTS[exchange][endpoint]
    host = urlsplit(base).netloc
    if exchange == "coinbase":
        now = patch.get("now", int(time.time()))
        headers = signers.coinbase_jwt(creds["api_key"], creds["api_secret"], "GET", host, target, now)
        return httpx.get(f"{base}/coinbase{target}", headers=headers)
    if exchange == "bitstamp":
        timestamp = patch.get("timestamp_ms", int(time.time() * 1000))
        headers, body = signers.bitstamp(
            creds["api_key"], creds["api_secret"], host, target, timestamp, nonce=patch.get("nonce")
        )
        return httpx.post(f"{base}/bitstamp{target}", headers=headers, content=body)
    return _ccxt_request(base, exchange, creds, target, **patch)


def outcome(exchange: str, response: httpx.Response) -> str:
    """The exchange's own code for an answer, "ok" for success."""
    if exchange == "coinbase":
        return "ok" if response.status_code == 200 else str(response.status_code)
    body = response.json()
    if exchange == "kraken":
        return body["error"][0] if body["error"] else "ok"
    if exchange in ("binance", "binance_us"):
        return str(body["code"]) if isinstance(body, dict) and "code" in body else "ok"
    if exchange == "kucoin":
        return "ok" if body["code"] == "200000" else body["code"]
    if exchange == "okx":
        return "ok" if body["code"] == "0" else body["code"]
    if exchange == "gemini":
        return body["reason"] if isinstance(body, dict) and body.get("result") == "error" else "ok"
    if exchange == "bybit":
        return "ok" if body["retCode"] == 0 else str(body["retCode"])
    if exchange == "gate_io":
        return body["label"] if isinstance(body, dict) and "label" in body else "ok"
    if exchange == "crypto_com":
        return "ok" if body["code"] == 0 else str(body["code"])
    if exchange == "bitfinex":
        if isinstance(body, list) and body and body[0] == "error":
            return str(body[2])
        return body["error"] if isinstance(body, dict) and "error" in body else "ok"
    if isinstance(body, dict) and body.get("status") == "error":
        return body.get("code") or body.get("response_code")
    return "ok"


# What each scenario answers on the cheap read (docs/sandbox.md), as (HTTP status, exchange code).
EXPECTED: dict[str, dict[str, tuple[int, str]]] = {
    "coinbase": {
        "wrong_secret": (401, "401"),
        "unknown_key": (401, "401"),
        "ip_whitelist": (401, "401"),
        "revoked": (401, "401"),
        "rate_limited": (429, "429"),
        "down": (503, "503"),
    },
    "kraken": {
        "wrong_secret": (200, "EAPI:Invalid signature"),
        "unknown_key": (200, "EAPI:Invalid key"),
        "ip_whitelist": (200, "EGeneral:Permission denied"),
        "revoked": (200, "EAPI:Invalid key"),
        "rate_limited": (200, "EAPI:Rate limit exceeded"),
        "down": (503, "EService:Unavailable"),
    },
    "kucoin": {
        "wrong_secret": (401, "400005"),
        "wrong_passphrase": (401, "400004"),
        "unknown_key": (401, "400003"),
        "ip_whitelist": (401, "400006"),
        "revoked": (401, "400003"),
        "rate_limited": (429, "429000"),
        "down": (503, "503000"),
    },
    "binance": {
        "wrong_secret": (400, "-1022"),
        "unknown_key": (401, "-2015"),
        "ip_whitelist": (401, "-2015"),
        "revoked": (401, "-2015"),
        "rate_limited": (429, "-1003"),
        "down": (503, "-1008"),
    },
    "okx": {
        "wrong_secret": (401, "50113"),
        "wrong_passphrase": (401, "50105"),
        "unknown_key": (401, "50111"),
        "ip_whitelist": (401, "50110"),
        "revoked": (401, "50111"),
        "rate_limited": (429, "50011"),
        "down": (503, "50001"),
    },
    "gemini": {
        "wrong_secret": (400, "InvalidSignature"),
        "unknown_key": (400, "InvalidApiKey"),
        "revoked": (400, "InvalidApiKey"),
        "rate_limited": (429, "RateLimit"),
        "down": (503, "Maintenance"),
    },
    "bitstamp": {
        "wrong_secret": (403, "API0005"),
        "unknown_key": (403, "API0002"),
        "not_activated": (403, "API0008"),
        "ip_whitelist": (403, "API0003"),
        "revoked": (403, "API0002"),
        "rate_limited": (429, "400.002"),
        "down": (503, "None"),
    },
}
EXPECTED["bybit"] = {
    "wrong_secret": (200, "10004"),
    "unknown_key": (200, "10003"),
    "revoked": (200, "10003"),
    "not_activated": (200, "33004"),
    "ip_whitelist": (200, "10010"),
    "rate_limited": (200, "10006"),
    "down": (503, "10016"),
}
EXPECTED["gate_io"] = {
    "wrong_secret": (401, "INVALID_SIGNATURE"),
    "unknown_key": (401, "INVALID_KEY"),
    "revoked": (401, "INVALID_KEY"),
    "ip_whitelist": (403, "IP_FORBIDDEN"),
    "rate_limited": (429, "TOO_MANY_REQUESTS"),
    "down": (503, "SERVER_ERROR"),
}
EXPECTED["crypto_com"] = {
    "wrong_secret": (401, "40101"),
    "unknown_key": (401, "40101"),
    "revoked": (401, "40101"),
    "ip_whitelist": (401, "40103"),
    "rate_limited": (429, "42901"),
    "down": (503, "None"),
}
EXPECTED["bitfinex"] = {
    "wrong_secret": (500, "apikey: digest invalid"),
    "unknown_key": (500, "apikey: invalid"),
    "revoked": (500, "apikey: invalid"),
    "rate_limited": (429, "ERR_RATE_LIMIT"),
    "down": (503, "maintenance"),
}
EXPECTED["kraken"]["lockout"] = (200, "EAPI:Invalid key")
EXPECTED["binance"]["lockout"] = (429, "-1003")
EXPECTED["bybit"]["lockout"] = (200, "10006")
EXPECTED["binance_us"] = EXPECTED["binance"]

# `dropped` cuts the connection and `ed25519` signs with EdDSA (their own tests below).
ALL_SCENARIOS = [
    (e, s) for e in SANDBOX_EXCHANGES for s in scenarios_for(e) if s not in ("dropped", "ed25519")
]


@pytest.mark.parametrize(("exchange", "scenario"), ALL_SCENARIOS)
def test_every_scenario_answers_its_documented_code(sandbox_url: str, exchange: str, scenario: str) -> None:
    response = call(sandbox_url, exchange, scenario)
    status, code = EXPECTED[exchange].get(scenario, (200, "ok"))
    plain_503 = response.status_code == 503 and exchange in ("bitstamp", "crypto_com")
    got = outcome(exchange, response) if not plain_503 else "None"
    assert (response.status_code, got) == (status, code), response.text


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_valid_key_is_accepted_on_every_endpoint(sandbox_url: str, exchange: str) -> None:
    for endpoint in range(len(ENDPOINTS[exchange])):
        response = call(sandbox_url, exchange, "valid", endpoint)
        assert (response.status_code, outcome(exchange, response)) == (200, "ok"), (endpoint, response.text)


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_the_valid_family_is_accepted_and_each_key_needs_its_own_secret(
    sandbox_url: str, exchange: str
) -> None:
    for scenario in ("valid-1", "valid-20"):
        response = call(sandbox_url, exchange, scenario)
        assert (response.status_code, outcome(exchange, response)) == (200, "ok"), (scenario, response.text)
    mixed = {
        **credentials_for(exchange, "valid-1"),
        "api_secret": credentials_for(exchange, "valid-2")["api_secret"],
    }
    response = call(sandbox_url, exchange, "valid-1", creds=mixed)
    refused = call(sandbox_url, exchange, "wrong_secret")
    assert (response.status_code, outcome(exchange, response)) == (
        refused.status_code,
        outcome(exchange, refused),
    ), response.text


PERMISSION_FIELDS: dict[str, Any] = {
    "coinbase": lambda body: (body["can_transfer"], body["can_trade"]),
    "kraken": lambda body: (
        "withdraw-funds" in body["result"]["permissions"],
        "modify-trades" in body["result"]["permissions"],
    ),
    "kucoin": lambda body: ("Withdrawal" in body["data"]["permission"], "Spot" in body["data"]["permission"]),
    "binance": lambda body: (body["enableWithdrawals"], body["enableSpotAndMarginTrading"]),
    "okx": lambda body: ("withdraw" in body["data"][0]["perm"], "trade" in body["data"][0]["perm"]),
    "gemini": lambda body: (body["isFundManager"], body["isTrader"]),
    "bybit": lambda body: (
        "Withdraw" in body["result"]["permissions"]["Wallet"],
        bool(body["result"]["permissions"]["Spot"]),
    ),
    "gate_io": lambda body: tuple(
        any(p["name"] == name and not p["read_only"] for k in body for p in k["perms"])
        for name in ("wallet", "spot")
    ),
    "bitfinex": lambda body: tuple(any(r[0] == s and r[2] for r in body) for s in ("withdraw", "orders")),
}
PERMISSION_FIELDS["binance_us"] = PERMISSION_FIELDS["binance"]


@pytest.mark.parametrize("exchange", sorted(PERMISSION_FIELDS))
def test_permission_endpoint_shows_withdraw_and_trade(sandbox_url: str, exchange: str) -> None:
    answers = {
        s: PERMISSION_FIELDS[exchange](call(sandbox_url, exchange, s, 1).json())
        for s in ("valid", "withdrawals_enabled", "trading_enabled")
    }
    assert answers == {
        "valid": (False, False),
        "withdrawals_enabled": (True, False),
        "trading_enabled": (False, True),
    }


@pytest.mark.parametrize("exchange", ["kraken", "kucoin", "binance", "okx", "gemini", "coinbase", "bitstamp"])
def test_empty_account_has_no_history(sandbox_url: str, exchange: str) -> None:
    response = call(sandbox_url, exchange, "empty_account", len(ENDPOINTS[exchange]) - 1)
    body = response.json()
    history = {
        "kraken": lambda: body["result"]["count"],
        "kucoin": lambda: body["data"]["totalNum"],
        "binance": lambda: len(body),
        "okx": lambda: len(body["data"]),
        "gemini": lambda: len(body),
        "coinbase": lambda: len(body["fills"]),
        "bitstamp": lambda: len(body),
    }[exchange]()
    assert history == 0


def test_ip_restriction_is_visible_where_the_exchange_shows_it(sandbox_url: str) -> None:
    kraken = call(sandbox_url, "kraken", "ip_whitelist", 1).json()
    assert kraken["result"]["ipAllowlist"] == [BLOCKED_IP]
    assert "127.0.0.1" in call(sandbox_url, "okx", "ip_whitelist").json()["msg"]
    assert "127.0.0.1" in call(sandbox_url, "kucoin", "ip_whitelist").json()["msg"]


def test_binance_rate_limit_sends_retry_after(sandbox_url: str) -> None:
    response = call(sandbox_url, "binance", "rate_limited")
    assert response.headers["Retry-After"] == "60"


# --- wrong signature / stale timestamp / reused nonce, over HTTP -----------------------------------------


def test_stale_timestamps_are_refused(sandbox_url: str) -> None:
    past_ms = int(time.time() * 1000) - 120_000
    assert outcome("binance", call(sandbox_url, "binance", "valid", nonce=lambda: past_ms)) == "-1021"
    assert outcome("kucoin", call(sandbox_url, "kucoin", "valid", nonce=lambda: past_ms)) == "400002"
    assert (
        outcome("okx", call(sandbox_url, "okx", "valid", nonce=lambda: past_ms, milliseconds=lambda: past_ms))
        == "50102"
    )
    old = int(time.time()) - 300
    assert call(sandbox_url, "coinbase", "valid", now=old).status_code == 401
    response = call(sandbox_url, "bitstamp", "valid", timestamp_ms=int(time.time() * 1000) - 151_000)
    assert response.json()["code"] == "API0017"


def test_reused_nonces_are_refused(sandbox_url: str) -> None:
    nonce = _next_nonce()
    for exchange, code in (("kraken", "EAPI:Invalid nonce"), ("gemini", "InvalidNonce")):
        first = call(sandbox_url, exchange, "empty_account", nonce=lambda: nonce)
        again = call(sandbox_url, exchange, "empty_account", nonce=lambda: nonce)
        assert (outcome(exchange, first), outcome(exchange, again)) == ("ok", code)
    uuid_nonce = "3b1f4e2a-9c8d-4e7f-a6b5-1c2d3e4f5a6b"
    assert call(sandbox_url, "bitstamp", "empty_account", nonce=uuid_nonce).status_code == 200
    assert call(sandbox_url, "bitstamp", "empty_account", nonce=uuid_nonce).json()["code"] == "API0004"


def test_a_client_that_signs_the_prefixed_path_is_refused(sandbox_url: str) -> None:
    creds = credentials_for("kraken", "valid")
    headers, body = signers.kraken(
        creds["api_key"], creds["api_secret"], "/kraken/0/private/Balance", _next_nonce()
    )
    response = httpx.post(f"{sandbox_url}/kraken/0/private/Balance", headers=headers, content=body)
    assert response.json()["error"] == ["EAPI:Invalid signature"]


# --- latency ------------------------------------------------------------------------------------------------


def test_slow_key_waits_and_still_answers(sandbox_url: str) -> None:
    started = time.monotonic()
    response = call(sandbox_url, "okx", "slow")
    assert response.status_code == 200
    assert time.monotonic() - started >= SLOW_LATENCY_S


def test_global_latency_is_added_to_every_answer() -> None:
    with serve_in_thread(latency_s=0.2) as url:
        started = time.monotonic()
        response = httpx.get(f"{url}/binance/api/v3/time")
        assert response.status_code == 200 and "serverTime" in response.json()
        assert time.monotonic() - started >= 0.2


def test_unknown_prefix_lists_the_exchanges(sandbox_url: str) -> None:
    response = httpx.get(f"{sandbox_url}/mtgox/v5/user/query-api")
    assert response.status_code == 404 and "kraken" in response.json()["exchanges"]


# --- repeated failures, dropped connections ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "second"),
    [
        ("kraken", (200, "EGeneral:Temporary lockout")),
        ("binance", (418, "-1003")),
        ("bybit", (403, None)),
    ],
)
def test_a_second_attempt_with_the_lockout_key_is_punished(
    exchange: str, second: tuple[int, str | None]
) -> None:
    with serve_in_thread() as url:
        first = call(url, exchange, "lockout")
        assert first.status_code in (200, 429)
        again = call(url, exchange, "lockout")
        status, code = second
        assert again.status_code == status, again.text
        if code is not None:
            assert outcome(exchange, again) == code
        if exchange == "binance":
            assert int(again.headers["Retry-After"]) >= 100
        # Kraken: each attempt during the lockout restarts it.
        if exchange == "kraken":
            assert outcome(exchange, call(url, exchange, "lockout")) == "EGeneral:Temporary lockout"


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_dropped_key_cuts_the_connection_midway(sandbox_url: str, exchange: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        call(sandbox_url, exchange, "dropped")


def test_coinbase_accepts_an_eddsa_jwt_of_an_ed25519_key_and_refuses_another_keys() -> None:
    import base64
    import secrets

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ed25519

    creds = credentials_for("coinbase", "ed25519")
    path = "/api/v3/brokerage/key_permissions"

    def token(seed: bytes, host: str) -> str:
        now = int(time.time())
        uri = f"GET {host}{path}"
        claims = {"sub": creds["api_key"], "iss": "cdp", "nbf": now, "exp": now + 120, "uris": [uri]}
        headers = {"kid": creds["api_key"], "nonce": secrets.token_hex(16), "typ": "JWT"}
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)

    with serve_in_thread() as url:
        host = urlsplit(url).netloc
        seed = base64.b64decode(creds["api_secret"])[:32]
        ok = httpx.get(f"{url}/coinbase{path}", headers={"Authorization": f"Bearer {token(seed, host)}"})
        assert ok.status_code == 200 and ok.json()["can_view"] is True
        other = httpx.get(
            f"{url}/coinbase{path}", headers={"Authorization": f"Bearer {token(b'x' * 32, host)}"}
        )
        assert other.status_code == 401
