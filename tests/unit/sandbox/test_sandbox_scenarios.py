"""Scenario keys: real key shapes, a sandbox marker no real key has, deterministic, and a complete table."""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.sandbox.scenarios import (
    SANDBOX_EXCHANGES,
    SCENARIOS,
    VALID_FAMILY_SIZE,
    credentials_for,
    registered_key,
    scenario_table,
    scenarios_for,
    unsupported_reason,
    valid_family_member,
)

UUID_TAIL = r"-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
SHAPES = {
    "kraken": (r"KeyMedicSandbox[A-Za-z0-9+/]{41}", r"KeyMedicSandbox[A-Za-z0-9+/]{71}=="),
    "binance": (r"KeyMedicSandbox[A-Za-z0-9]{49}", r"KeyMedicSandbox[A-Za-z0-9]{49}"),
    "binance_us": (r"KeyMedicSandbox[A-Za-z0-9]{49}", r"KeyMedicSandbox[A-Za-z0-9]{49}"),
    "coinbase": (
        rf"organizations/00000000-0000-4000-8000-6b65796d6564/apiKeys/00000000{UUID_TAIL}",
        r"-----BEGIN EC PRIVATE KEY-----\n.+",
    ),
    "kucoin": (r"00000000[0-9a-f]{16}", rf"00000000{UUID_TAIL}"),
    "okx": (rf"00000000{UUID_TAIL}", r"00000000[0-9A-F]{24}"),
    "gemini": (r"account-SANDBOX[A-Za-z0-9]{13}", r"SANDBOX[A-Za-z0-9]{21}"),
    "bitstamp": (r"KeyMedicSandbox[A-Za-z0-9]{17}", r"KeyMedicSandbox[a-z0-9]{17}"),
    "bybit": (r"KMsb0[A-Za-z0-9]{13}", r"KeyMedicSandbox[A-Za-z0-9]{21}"),
    "gate_io": (r"00000000[0-9a-f]{24}", r"00000000[0-9a-f]{56}"),
    "crypto_com": (r"KMsb0[A-Za-z0-9]{17}", r"KMsb0[A-Za-z0-9]{17}"),
    "bitfinex": (r"KeyMedicSandbox[A-Za-z0-9]{28}", r"KeyMedicSandbox[A-Za-z0-9]{28}"),
}


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_every_key_has_the_exchange_shape_and_the_sandbox_marker(exchange: str) -> None:
    key_shape, secret_shape = SHAPES[exchange]
    for scenario in scenarios_for(exchange):
        creds = credentials_for(exchange, scenario)
        if scenario == "ed25519":  # Coinbase's Ed25519 key: an id and base64 of seed + public key
            assert re.fullmatch(rf"00000000{UUID_TAIL}", creds["api_key"])
            assert len(base64.b64decode(creds["api_secret"], validate=True)) == 64
            continue
        assert re.fullmatch(key_shape, creds["api_key"]), (scenario, creds["api_key"])
        assert re.fullmatch(secret_shape, creds["api_secret"], re.DOTALL), scenario
        assert ("passphrase" in creds) == (exchange in ("kucoin", "okx"))


def test_kraken_secret_decodes_to_64_bytes_and_uuids_parse() -> None:
    assert len(base64.b64decode(credentials_for("kraken", "valid")["api_secret"], validate=True)) == 64
    uuid.UUID(credentials_for("okx", "valid")["api_key"])
    uuid.UUID(credentials_for("kucoin", "valid")["api_secret"])


def test_coinbase_secret_is_a_p256_pem() -> None:
    pem = credentials_for("coinbase", "valid")["api_secret"]
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_keys_are_deterministic_and_distinct() -> None:
    rows = scenario_table()
    again = scenario_table()
    assert rows == again
    seen: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row.scenario in ("wrong_secret", "wrong_passphrase"):
            continue
        assert row.api_key not in seen, (row, seen.get(row.api_key))
        seen[row.api_key] = (row.exchange, row.scenario)


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_wrong_secret_and_passphrase_reuse_the_valid_key(exchange: str) -> None:
    valid = credentials_for(exchange, "valid")
    wrong = credentials_for(exchange, "wrong_secret")
    assert wrong["api_key"] == valid["api_key"] and wrong["api_secret"] != valid["api_secret"]
    if "wrong_passphrase" in scenarios_for(exchange):
        other = credentials_for(exchange, "wrong_passphrase")
        assert (other["api_key"], other["api_secret"]) == (valid["api_key"], valid["api_secret"])
        assert other["passphrase"] != valid["passphrase"]


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_unknown_key_is_not_registered_and_the_others_are(exchange: str) -> None:
    for scenario in scenarios_for(exchange):
        key = registered_key(exchange, credentials_for(exchange, scenario)["api_key"])
        if scenario == "unknown_key":
            assert key is None
        elif scenario in ("wrong_secret", "wrong_passphrase"):
            assert key is not None and key.scenario == "valid"
        else:
            assert key is not None and key.scenario == scenario


def test_scenarios_for_keeps_order_and_says_why_one_is_missing() -> None:
    for exchange in SANDBOX_EXCHANGES:
        supported = scenarios_for(exchange)
        assert list(supported) == [s for s in SCENARIOS if s in supported]
        for scenario in set(SCENARIOS) - set(supported):
            assert unsupported_reason(exchange, scenario), (exchange, scenario)
    assert "wrong_passphrase" in scenarios_for("okx") and "wrong_passphrase" not in scenarios_for("kraken")
    assert "not_activated" in scenarios_for("bitstamp")
    with pytest.raises(KeyError, match="passphrase"):
        credentials_for("kraken", "wrong_passphrase")
    assert "not_activated" in scenarios_for("bybit")  # Bybit's expired key (33004)
    with pytest.raises(KeyError):
        scenarios_for("mtgox")


def test_the_table_has_every_supported_scenario() -> None:
    rows = scenario_table()
    assert len(rows) == sum(len(scenarios_for(e)) for e in SANDBOX_EXCHANGES)
    assert all(row.answer for row in rows)


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_the_valid_family_are_keys_of_their_own_that_play_valid(exchange: str) -> None:
    """`valid-1` … `valid-100`: many users at once, each with a key and secret of their own."""
    key_shape, secret_shape = SHAPES[exchange]
    family = [credentials_for(exchange, f"valid-{n}") for n in (1, 2, VALID_FAMILY_SIZE)]
    valid = credentials_for(exchange, "valid")
    assert len({c["api_key"] for c in family} | {valid["api_key"]}) == 4
    assert len({c["api_secret"] for c in family} | {valid["api_secret"]}) == 4
    for creds in family:
        assert re.fullmatch(key_shape, creds["api_key"]), creds["api_key"]
        assert re.fullmatch(secret_shape, creds["api_secret"], re.DOTALL)
        assert ("passphrase" in creds) == (exchange in ("kucoin", "okx"))
        known = registered_key(exchange, creds["api_key"])
        assert known is not None and known.scenario == "valid"
        assert known.api_secret == creds["api_secret"]
    assert credentials_for(exchange, "valid-7") == credentials_for(exchange, "valid-7")  # deterministic


@pytest.mark.parametrize(
    "name", ["valid-0", f"valid-{VALID_FAMILY_SIZE + 1}", "valid-07", "valid-x", "valid-"]
)
def test_names_outside_the_valid_family_are_refused(name: str) -> None:
    assert valid_family_member(name) is None
    with pytest.raises(KeyError):
        credentials_for("kraken", name)
