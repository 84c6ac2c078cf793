"""ccxt's offline `sign()` (an independent implementation) produces requests the sandbox accepts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.sandbox._common import ExchangeSandbox, SandboxRequest
from bot.sandbox.binance import BinanceSandbox, BinanceUsSandbox
from bot.sandbox.bitfinex import BitfinexSandbox
from bot.sandbox.bitstamp import BitstampSandbox
from bot.sandbox.bybit import BybitSandbox
from bot.sandbox.crypto_com import CryptoComSandbox
from bot.sandbox.gate_io import GateSandbox
from bot.sandbox.gemini import GeminiSandbox
from bot.sandbox.kraken import KrakenSandbox
from bot.sandbox.kucoin import KucoinSandbox
from bot.sandbox.okx import OkxSandbox
from bot.sandbox.scenarios import credentials_for

ccxt = pytest.importorskip("ccxt")

NOW_MS = 1_700_000_000_000


def _to_request(signed: dict[str, Any]) -> SandboxRequest:
    url = urlsplit(signed["url"])
    body = signed["body"] or ""
    return SandboxRequest(
        signed["method"], url.path, url.query, dict(signed["headers"] or {}), body.encode(), url.netloc
    )


def _exchange(ccxt_id: str, exchange: str, scenario: str = "valid") -> Any:
    creds = credentials_for(exchange, scenario)
    client = getattr(ccxt, ccxt_id)(
        {"apiKey": creds["api_key"], "secret": creds["api_secret"], "password": creds.get("passphrase")}
    )
    client.nonce = lambda: NOW_MS
    client.milliseconds = lambda: NOW_MS
    client.uuid = lambda: "f93c979d-b00d-43a9-9b9c-fd4cd9547fa6"
    return client


CASES = [
    ("kraken", "kraken", KrakenSandbox, ("GetApiKeyInfo", "private", "POST")),
    ("binance", "binance", BinanceSandbox, ("account/apiRestrictions", "sapi", "GET")),
    ("binanceus", "binance_us", BinanceUsSandbox, ("account/apiRestrictions", "sapi", "GET")),
    ("kucoin", "kucoin", KucoinSandbox, ("user/api-key", "private", "GET")),
    ("okx", "okx", OkxSandbox, ("account/config", "private", "GET")),
    ("gemini", "gemini", GeminiSandbox, ("v1/roles", "private", "POST")),
    ("bitstamp", "bitstamp", BitstampSandbox, ("account_balances/", "private", "POST")),
    ("bybit", "bybit", BybitSandbox, ("v5/user/query-api", "private", "GET")),
    ("gate", "gate_io", GateSandbox, ("detail", ["private", "account"], "GET")),
    ("cryptocom", "crypto_com", CryptoComSandbox, ("private/user-balance", ["v1", "private"], "POST")),
    ("bitfinex", "bitfinex", BitfinexSandbox, ("auth/r/permissions", "private", "POST")),
]


@pytest.mark.parametrize(("ccxt_id", "exchange", "sandbox_class", "call"), CASES)
def test_ccxt_signed_request_is_accepted_and_wrong_secret_is_refused(
    ccxt_id: str, exchange: str, sandbox_class: type[ExchangeSandbox], call: tuple[str, Any, str]
) -> None:
    path, api, method = call
    sandbox = sandbox_class(clock=lambda: NOW_MS / 1000)
    accepted = sandbox.handle(_to_request(_exchange(ccxt_id, exchange).sign(path, api, method, {})))
    assert accepted.status == 200, accepted.body
    wrong = _exchange(ccxt_id, exchange, "wrong_secret")
    wrong.nonce = lambda: NOW_MS + 1
    wrong.uuid = lambda: "0b7d2a9e-8c4f-4e1a-9d3b-5f6a7c8d9e0f"
    refused = sandbox.handle(_to_request(wrong.sign(path, api, method, {})))
    body = refused.json()
    # Bybit answers errors with HTTP 200 and a non-zero retCode.
    assert refused.status != 200 or body.get("error") or body.get("retCode"), refused.body
