"""The sandbox's scenario keys: one deterministic key per (exchange, scenario), in the exchange's key shape.

Keys are derived with HMAC-SHA256 from a fixed, public sandbox seed, so they are the same on every machine and
the README can list them. None of them can be a real key, because each carries a marker no exchange issues
(reference/exchanges.md gives the real shapes):

| exchange | marker |
|---|---|
| kraken, binance, binance_us, bitstamp | key starts with `KeyMedicSandbox` (the Kraken secret too) |
| gemini | key starts with `account-SANDBOX`, secret with `SANDBOX` |
| coinbase, kucoin, okx, gate_io | ids, UUIDs and hex keys start with `00000000` |
| bybit | key starts with `KMsb0` (18 characters leave no room for more), secret with `KeyMedicSandbox` |
| crypto_com | key and secret start with `KMsb0` (22 characters) |
| bitfinex | key and secret start with `KeyMedicSandbox` |

(KuCoin ids are Mongo ObjectIds whose first 8 hex digits are a creation time: 0 is 1970. The Coinbase
organisation is `00000000-0000-4000-8000-6b65796d6564`, "keymed" in hex.)

Beside `valid`, every exchange knows a family of further read-only keys with history, `valid-1` …
`valid-100` (`VALID_FAMILY_SIZE`): each answers exactly like `valid` but is a key of its own, with its own
secret (and passphrase) derived from the seed like the others, so many users at once can each have a key, as
on a real exchange (`keymedic sandbox --show kraken valid-7`). They are not in `scenarios_for` or the table.

`wrong_secret` and `wrong_passphrase` are the `valid` key with a different, well-formed secret or passphrase,
so the sandbox sees a known key and a signature (or passphrase) that does not match. `unknown_key` is
well-formed but registered nowhere. Scenarios an exchange cannot express are left out of `scenarios_for`
(see `_WHY_NOT`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Final

__all__ = [
    "SCENARIOS",
    "SANDBOX_EXCHANGES",
    "SandboxKey",
    "ScenarioRow",
    "scenarios_for",
    "credentials_for",
    "scenario_table",
    "registered_key",
    "unsupported_reason",
    "BLOCKED_IP",
    "VALID_FAMILY_SIZE",
    "valid_family_member",
]

SCENARIOS: Final[tuple[str, ...]] = (
    "valid",
    "wrong_secret",
    "wrong_passphrase",
    "unknown_key",
    "not_activated",
    "withdrawals_enabled",
    "trading_enabled",
    "ip_whitelist",
    "empty_account",
    "revoked",
    "rate_limited",
    "lockout",
    "down",
    "slow",
    "dropped",
    "ed25519",
)

SANDBOX_EXCHANGES: Final[tuple[str, ...]] = (
    "coinbase",
    "kraken",
    "kucoin",
    "binance",
    "binance_us",
    "okx",
    "gemini",
    "bitstamp",
    "bybit",
    "gate_io",
    "crypto_com",
    "bitfinex",
)

# How many further `valid` keys each exchange knows: `valid-1` … `valid-<this>`.
VALID_FAMILY_SIZE: Final = 100

# The allowlist of every `ip_whitelist` key: a documentation address (RFC 5737), so no caller is ever on it.
BLOCKED_IP: Final = "203.0.113.7"

# Public on purpose: the keys are fixtures, not secrets.
_SEED: Final = b"keymedic-sandbox-v1: these keys are fixtures and open no account anywhere"

_COINBASE_ORG: Final = "00000000-0000-4000-8000-6b65796d6564"

_COMMON: Final[dict[str, str]] = {
    "valid": "read-only key with history: every endpoint answers 200",
    "wrong_secret": "signature error",
    "unknown_key": "unknown-key error",
    "withdrawals_enabled": "accepted; the permission endpoint shows withdrawals on",
    "trading_enabled": "accepted; the permission endpoint shows trading on",
    "empty_account": "accepted; balances and history empty",
    "revoked": "same answer as an unknown key (a deleted key is unknown to the exchange)",
    "slow": "valid, but every answer waits the slow latency (default 3 s)",
    "dropped": "valid, but the connection is cut halfway through every answer",
}

# What the sandbox answers, per exchange and scenario. The exchange modules implement exactly this.
_ANSWERS: Final[dict[str, dict[str, str]]] = {
    "coinbase": {
        **_COMMON,
        "wrong_secret": "401 text `Unauthorized` (JWT signed by another EC key)",
        "unknown_key": "401 text `Unauthorized`",
        "revoked": "401 text `Unauthorized`",
        "withdrawals_enabled": "key_permissions `can_transfer: true`",
        "trading_enabled": "key_permissions `can_trade: true`",
        "ip_whitelist": "401 text `Unauthorized` on every endpoint (Coinbase reports no IP info)",
        "rate_limited": '429 `{"errors":[{"id":"rate_limit_exceeded","message":"Too many requests"}]}`',
        "down": '503 `{"error":"UNAVAILABLE",…}`',
        "ed25519": "a read-only Ed25519 CDP key (id + base64 secret): EdDSA JWTs accepted, like `valid`",
    },
    "kraken": {
        **_COMMON,
        "wrong_secret": "200 `EAPI:Invalid signature`",
        "unknown_key": "200 `EAPI:Invalid key`",
        "revoked": "200 `EAPI:Invalid key`",
        "withdrawals_enabled": "GetApiKeyInfo permissions include `withdraw-funds`",
        "trading_enabled": "GetApiKeyInfo permissions include `modify-trades`",
        "ip_whitelist": f'GetApiKeyInfo `ipAllowlist: ["{BLOCKED_IP}"]`; '
        "other endpoints `EGeneral:Permission denied`",
        "rate_limited": "200 `EAPI:Rate limit exceeded`",
        "lockout": "200 `EAPI:Invalid key`; any retry within 15 min: `EGeneral:Temporary lockout` (and the "
        "15 min start again)",
        "down": "503 `EService:Unavailable`",
    },
    "kucoin": {
        **_COMMON,
        "wrong_secret": '401 `{"code":"400005","msg":"Invalid KC-API-SIGN"}`',
        "wrong_passphrase": '401 `{"code":"400004","msg":"Invalid KC-API-PASSPHRASE"}`',
        "unknown_key": '401 `{"code":"400003","msg":"KC-API-KEY does not exist"}`',
        "revoked": "401 `400003`",
        "withdrawals_enabled": 'api-key `permission: "General,Withdrawal"`',
        "trading_enabled": 'api-key `permission: "General,Spot"`',
        "ip_whitelist": "401 `400006` Invalid request IP, the current client IP is: <caller>",
        "rate_limited": "429 `429000` with gw-ratelimit-* headers",
        "down": '503 `{"code":"503000",…}`',
    },
    "binance": {
        **_COMMON,
        "wrong_secret": '400 `{"code":-1022,"msg":"Signature for this request is not valid."}`',
        "unknown_key": "401 `-2015` Invalid API-key, IP, or permissions for action.",
        "revoked": "401 `-2015`",
        "withdrawals_enabled": "apiRestrictions `enableWithdrawals: true` (and `ipRestrict: true`, which "
        "Binance requires for withdrawals; the caller is on that list)",
        "trading_enabled": "apiRestrictions `enableSpotAndMarginTrading: true`",
        "ip_whitelist": "401 `-2015` on every endpoint, apiRestrictions included (one code, three causes)",
        "rate_limited": "429 `-1003` with `Retry-After`",
        "lockout": "429 `-1003` with `Retry-After: 60`; a call before then: 418 IP ban (`Retry-After: 120`)",
        "down": "503 `-1008` server busy",
    },
    "okx": {
        **_COMMON,
        "wrong_secret": '401 `{"code":"50113","msg":"Invalid Sign"}`',
        "wrong_passphrase": "401 `50105` OK-ACCESS-PASSPHRASE incorrect",
        "unknown_key": "401 `50111` Invalid OK-ACCESS-KEY",
        "revoked": "401 `50111`",
        "withdrawals_enabled": 'account/config `perm: "read_only,withdraw"`',
        "trading_enabled": 'account/config `perm: "read_only,trade"`',
        "ip_whitelist": "401 `50110` Your IP <caller> is not included in your API key's IP whitelist.",
        "rate_limited": "429 `50011` Rate limit reached",
        "down": "503 `50001` Service temporarily unavailable",
    },
    "gemini": {
        **_COMMON,
        "wrong_secret": '400 `{"result":"error","reason":"InvalidSignature",…}`',
        "unknown_key": "400 `InvalidApiKey`",
        "revoked": "400 `InvalidApiKey`",
        "withdrawals_enabled": "roles `isFundManager: true`",
        "trading_enabled": "roles `isTrader: true`",
        "rate_limited": "429 `RateLimit`",
        "down": "503 `Maintenance`",
    },
    "bitstamp": {
        **_COMMON,
        "wrong_secret": '403 `{"status":"error","reason":"Invalid signature","code":"API0005"}`',
        "unknown_key": "403 `API key not found` (API0002)",
        "revoked": "403 `API key not found` (API0002)",
        "not_activated": "403 `Authentication failed` (API0008; Bitstamp's wording for an inactive key is "
        "unconfirmed, so the diagnosis must ask the user about the activation e-mail)",
        "ip_whitelist": "403 `IP address not allowed` (API0003)",
        "rate_limited": "429 `400.002` Request rejected due to exceeded rate limit",
        "down": '503 `{"status":"error","reason":"Service unavailable"}`',
    },
    "bybit": {
        **_COMMON,
        "wrong_secret": '200 `{"retCode":10004,"retMsg":"error sign! …"}`',
        "unknown_key": "200 `10003` API key is invalid",
        "revoked": "200 `10003`",
        "not_activated": "200 `33004` API key expired (Bybit expires keys with no IP bound)",
        "withdrawals_enabled": 'query-api `readOnly: 0`, `permissions.Wallet: ["Withdraw"]`',
        "trading_enabled": 'query-api `readOnly: 0`, `permissions.Spot: ["SpotTrade"]`',
        "ip_whitelist": "200 `10010` Unmatched IP on every endpoint",
        "rate_limited": "200 `10006` Too many visits, with `X-Bapi-Limit-Reset-Timestamp`",
        "lockout": "200 `10006` with a reset 60 s ahead; a call before then: 403 `access too frequent` "
        "(10 min)",
        "down": "503 `10016` Service unavailable",
    },
    "gate_io": {
        **_COMMON,
        "wrong_secret": '401 `{"label":"INVALID_SIGNATURE",…}`',
        "unknown_key": "401 `INVALID_KEY`",
        "revoked": "401 `INVALID_KEY`",
        "withdrawals_enabled": 'main_keys `perms: [{"name": "wallet", "read_only": false}, …]`',
        "trading_enabled": 'main_keys `perms: [{"name": "spot", "read_only": false}, …]`',
        "ip_whitelist": "403 `IP_FORBIDDEN` on every endpoint",
        "rate_limited": "429 `TOO_MANY_REQUESTS`",
        "down": "503 `SERVER_ERROR`",
    },
    "crypto_com": {
        **_COMMON,
        "wrong_secret": '401 `{"code":40101,"message":"Authentication failure"}` (same as an unknown key)',
        "unknown_key": "401 `40101` Authentication failure",
        "revoked": "401 `40101`",
        "ip_whitelist": "401 `40103` IP address not whitelisted",
        "rate_limited": "429 `42901` Too many requests",
        "down": "503 (no body code)",
    },
    "bitfinex": {
        **_COMMON,
        "wrong_secret": '500 `["error",10100,"apikey: digest invalid"]`',
        "unknown_key": '500 `["error",10100,"apikey: invalid"]`',
        "revoked": "500 `apikey: invalid`",
        "withdrawals_enabled": 'permissions `["withdraw", 0, 1]`',
        "trading_enabled": 'permissions `["orders", 1, 1]`',
        "rate_limited": '429 `{"error":"ERR_RATE_LIMIT"}`',
        "down": '503 `["error",20060,"maintenance"]`',
    },
}
_ANSWERS["binance_us"] = dict(_ANSWERS["binance"])
# Bitstamp has no permission endpoint: a key with withdrawals or trading on reads like a read-only one.
for _scenario in ("withdrawals_enabled", "trading_enabled"):
    del _ANSWERS["bitstamp"][_scenario]
    # Crypto.com reports no permissions either (reference §10).
    del _ANSWERS["crypto_com"][_scenario]

# Why a scenario is missing for an exchange (shown in docs/sandbox.md).
_WHY_NOT: Final[dict[str, str]] = {
    "ed25519": "only Coinbase CDP keys come as Ed25519 keys",
    "lockout": "only Kraken (lockout after failed attempts), Binance (418 after an ignored 429) and Bybit "
    "(403 after an ignored 10006) punish repeated attempts in a documented way",
    "wrong_passphrase": "only KuCoin and OKX keys have a passphrase",
    "not_activated": "only Bitstamp keys wait for an e-mail activation link (reference §8) and only Bybit "
    "reports an expired key (33004); the others are live as soon as they are created",
    "withdrawals_enabled": "Bitstamp and Crypto.com have no endpoint that reports a key's permissions; reads "
    "answer alike",
    "trading_enabled": "Bitstamp and Crypto.com have no endpoint that reports a key's permissions; reads "
    "answer alike",
    "ip_whitelist": "Gemini's and Bitfinex's IP-allowlist rejections are undocumented (reference §7, §9, "
    "§15)",
}


@dataclass(frozen=True)
class SandboxKey:
    """A credential the sandbox knows, with the scenario it plays."""

    exchange: str
    scenario: str
    api_key: str
    api_secret: str
    passphrase: str | None = None


@dataclass(frozen=True)
class ScenarioRow:
    """One row of the docs table."""

    exchange: str
    scenario: str
    api_key: str
    answer: str


def _derive(exchange: str, scenario: str, purpose: str, length: int = 32) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        message = f"{exchange}/{scenario}/{purpose}/{counter}".encode()
        out += hmac.new(_SEED, message, hashlib.sha256).digest()
        counter += 1
    return out[:length]


_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _alnum(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, len(_ALNUM))
        chars.append(_ALNUM[rest])
    return "".join(chars)


def _uuid4(data: bytes, zero_prefix: bool = True) -> str:
    text = str(uuid.UUID(bytes=data[:16], version=4))
    return "00000000" + text[8:] if zero_prefix else text


def _coinbase_pem(exchange: str, scenario: str) -> str:
    # cryptography is imported here so importing the scenario table stays cheap.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # Any integer in [1, n-1] is a P-256 private key; derive one from the seed.
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    secret = int.from_bytes(_derive(exchange, scenario, "ec", 48), "big") % (order - 1) + 1
    key = ec.derive_private_key(secret, ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem.decode()


def _coinbase_ed25519(exchange: str, scenario: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    seed = _derive(exchange, scenario, "ed25519", 32)
    public = (
        ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(seed + public).decode()


def _secret(exchange: str, scenario: str) -> str:
    data = _derive(exchange, scenario, "secret", 64)
    if exchange == "kraken":
        # 64 secret bytes, base64 (88 chars) as Kraken shows them; the first 12 bytes spell the marker.
        return base64.b64encode(base64.b64decode("KeyMedicSandboxA") + data[:52]).decode()
    if exchange in ("binance", "binance_us"):
        return "KeyMedicSandbox" + _alnum(data, 49)
    if exchange == "coinbase" and scenario == "ed25519":
        return _coinbase_ed25519(exchange, scenario)
    if exchange == "coinbase":
        return _coinbase_pem(exchange, scenario)
    if exchange == "kucoin":
        return _uuid4(data)
    if exchange == "okx":
        return "00000000" + data[:12].hex().upper()
    if exchange == "gemini":
        return "SANDBOX" + _alnum(data, 21)
    if exchange == "bitstamp":
        return "KeyMedicSandbox" + _alnum(data, 17).lower()
    if exchange == "bybit":
        return "KeyMedicSandbox" + _alnum(data, 21)
    if exchange == "gate_io":
        return "00000000" + data[:28].hex()
    if exchange == "crypto_com":
        return "KMsb0" + _alnum(data, 17)
    if exchange == "bitfinex":
        return "KeyMedicSandbox" + _alnum(data, 28)
    raise KeyError(exchange)


def _api_key(exchange: str, scenario: str) -> str:
    data = _derive(exchange, scenario, "key", 64)
    if exchange == "kraken":
        return "KeyMedicSandbox" + base64.b64encode(data).decode()[:41]
    if exchange in ("binance", "binance_us"):
        return "KeyMedicSandbox" + _alnum(data, 49)
    if exchange == "coinbase" and scenario == "ed25519":
        return _uuid4(data)  # Ed25519 CDP keys are named by their id
    if exchange == "coinbase":
        return f"organizations/{_COINBASE_ORG}/apiKeys/{_uuid4(data)}"
    if exchange == "kucoin":
        return "00000000" + data[:8].hex()
    if exchange == "okx":
        return _uuid4(data)
    if exchange == "gemini":
        return "account-SANDBOX" + _alnum(data, 13)
    if exchange == "bitstamp":
        return "KeyMedicSandbox" + _alnum(data, 17)
    if exchange == "bybit":
        return "KMsb0" + _alnum(data, 13)
    if exchange == "gate_io":
        return "00000000" + data[:12].hex()
    if exchange == "crypto_com":
        return "KMsb0" + _alnum(data, 17)
    if exchange == "bitfinex":
        return "KeyMedicSandbox" + _alnum(data, 28)
    raise KeyError(exchange)


def _passphrase(exchange: str, scenario: str) -> str | None:
    if exchange not in ("kucoin", "okx"):
        return None
    # OKX wants 8-32 characters with upper, lower, digit and a symbol; KuCoin accepts the same.
    return "Sandbox-" + _alnum(_derive(exchange, scenario, "passphrase", 16), 8) + "1"


def valid_family_member(scenario: str) -> int | None:
    """N for `valid-N` (1 ≤ N ≤ `VALID_FAMILY_SIZE`), else None."""
    prefix, _, number = scenario.partition("-")
    if prefix != "valid" or not number.isdigit() or number != str(int(number)):
        return None
    return int(number) if 1 <= int(number) <= VALID_FAMILY_SIZE else None


def _check(exchange: str, scenario: str | None = None) -> None:
    if exchange not in SANDBOX_EXCHANGES:
        raise KeyError(f"the sandbox does not play {exchange!r}; it plays {', '.join(SANDBOX_EXCHANGES)}")
    if scenario is not None and valid_family_member(scenario) is not None:
        return
    if scenario is not None and scenario not in _ANSWERS[exchange]:
        reason = unsupported_reason(exchange, scenario) or "no such scenario"
        raise KeyError(f"{exchange} has no {scenario!r} scenario: {reason}")


def scenarios_for(exchange: str) -> tuple[str, ...]:
    """The scenarios the sandbox plays for this exchange, in `SCENARIOS` order."""
    _check(exchange)
    return tuple(s for s in SCENARIOS if s in _ANSWERS[exchange])


def unsupported_reason(exchange: str, scenario: str) -> str | None:
    """Why an exchange has no such scenario, or None when it has it."""
    if scenario in _ANSWERS.get(exchange, {}):
        return None
    return _WHY_NOT.get(scenario)


@cache
def _credentials(exchange: str, scenario: str) -> tuple[str, str, str | None]:
    if scenario == "wrong_secret":
        key, _, passphrase = _credentials(exchange, "valid")
        return key, _secret(exchange, "wrong_secret"), passphrase
    if scenario == "wrong_passphrase":
        key, secret, _ = _credentials(exchange, "valid")
        return key, secret, _passphrase(exchange, "wrong_passphrase")
    return _api_key(exchange, scenario), _secret(exchange, scenario), _passphrase(exchange, scenario)


def credentials_for(exchange: str, scenario: str) -> dict[str, str]:
    """What a user would paste for this scenario: `api_key`, `api_secret`, and `passphrase` for KuCoin/OKX."""
    _check(exchange, scenario)
    key, secret, passphrase = _credentials(exchange, scenario)
    creds = {"api_key": key, "api_secret": secret}
    if passphrase is not None:
        creds["passphrase"] = passphrase
    return creds


@cache
def _registry(exchange: str) -> dict[str, SandboxKey]:
    # The keys the exchange knows: each scenario's own key, except those reusing `valid`'s and the unknown.
    known: dict[str, SandboxKey] = {}
    for scenario in scenarios_for(exchange):
        if scenario in ("wrong_secret", "wrong_passphrase", "unknown_key"):
            continue
        key, secret, passphrase = _credentials(exchange, scenario)
        known[key] = SandboxKey(exchange, scenario, key, secret, passphrase)
    # The `valid` family: each its own key and secret, each playing `valid`.
    for number in range(1, VALID_FAMILY_SIZE + 1):
        key, secret, passphrase = _credentials(exchange, f"valid-{number}")
        known[key] = SandboxKey(exchange, "valid", key, secret, passphrase)
    return known


def registered_key(exchange: str, api_key: str) -> SandboxKey | None:
    """The key the sandbox knows under this id for this exchange, or None."""
    return _registry(exchange).get(api_key)


def scenario_table() -> list[ScenarioRow]:
    """One row per (exchange, scenario) for the docs: the key to paste and what the sandbox answers."""
    rows = []
    for exchange in SANDBOX_EXCHANGES:
        for scenario in scenarios_for(exchange):
            creds = credentials_for(exchange, scenario)
            rows.append(ScenarioRow(exchange, scenario, creds["api_key"], _ANSWERS[exchange][scenario]))
    return rows
