"""Every exchange client against the real sandbox over real HTTP, for every scenario key it plays: the
diagnosis names the right checklist item (FAIL, or UNKNOWN where the exchange's own answer is ambiguous), no
other item fails, and an exchange that cannot answer is reported as unavailable, never as a bad key.

The sandbox verifies each exchange's real signature scheme with its own code (bot/sandbox), so a signing bug
in bot/exchanges fails here rather than passing on both sides.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.diagnosis import diagnose
from bot.diagnosis.service import reset_rate_limits
from bot.exchanges._http import aclose_shared_client
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item, Status

scenarios = pytest.importorskip("bot.sandbox.scenarios")
server = pytest.importorskip("bot.sandbox.server")

pytestmark = pytest.mark.integration

# The sandbox's `slow` keys wait this long per answer: two round trips fit the default deadline.
SLOW_LATENCY_S = 0.5

# The item each scenario is about.
NAMED: dict[str, Item] = {
    "wrong_secret": Item.SECRET_OK,
    "wrong_passphrase": Item.PASSPHRASE_OK,
    "unknown_key": Item.KEY_KNOWN,
    "revoked": Item.KEY_KNOWN,
    "not_activated": Item.ACTIVATED,
    "withdrawals_enabled": Item.NO_TRADE_OR_WITHDRAW,
    "trading_enabled": Item.NO_TRADE_OR_WITHDRAW,
    "ip_whitelist": Item.NO_IP_RESTRICTION,
    "empty_account": Item.HAS_ACTIVITY,
}

# Where the exchange's own answer cannot tell the cause apart (reference/exchanges.md §0.4), the named item is
# UNKNOWN (with a fix for the checklist) instead of FAIL.
AMBIGUOUS: set[tuple[str, str]] = {
    # Coinbase answers a bare 401 for an unknown key, a wrong private key and a blocked IP alike.
    ("coinbase", "wrong_secret"),
    ("coinbase", "unknown_key"),
    ("coinbase", "revoked"),
    ("coinbase", "ip_whitelist"),
    # Binance's -2015: invalid key, IP, or permissions.
    *{(ex, sc) for ex in ("binance", "binance_us") for sc in ("unknown_key", "revoked", "ip_whitelist")},
    # Bitstamp's "Authentication failed" does not say the key is inactive (§8, unconfirmed wording).
    ("bitstamp", "not_activated"),
    # No single call shows the whole history: empty balances and recent records are not proof of none.
    *{
        (ex, "empty_account")
        for ex in ("coinbase", "binance", "binance_us", "kucoin", "okx", "bybit", "gate_io", "crypto_com")
    },
    # Crypto.com's 40101 is both "unknown key" and "wrong signature" (§10).
    *{("crypto_com", sc) for sc in ("wrong_secret", "unknown_key", "revoked")},
}

# Other items that truly fail in a scenario, as the sandbox plays it.
ALSO_FAILING: dict[tuple[str, str], set[Item]] = {
    # Binance requires an IP restriction before it enables withdrawals (§5), so that key has one.
    ("binance", "withdrawals_enabled"): {Item.NO_IP_RESTRICTION},
    ("binance_us", "withdrawals_enabled"): {Item.NO_IP_RESTRICTION},
    # A Gemini Fund Manager key without Auditor or Trader cannot read trade history.
    ("gemini", "withdrawals_enabled"): {Item.READ_PERMISSION},
}

UNAVAILABLE: dict[str, str] = {
    "rate_limited": "rate_limited",
    "down": "server_error",
    "dropped": "unreachable",
}
# The `lockout` key's first answer: Kraken refuses it as an unknown key; Binance and Bybit rate limit.
LOCKOUT_FIRST: dict[str, str | Item] = {
    "kraken": Item.KEY_KNOWN,
    "binance": "rate_limited",
    "binance_us": "rate_limited",
    "bybit": "rate_limited",
}

CASES = [(ex, sc) for ex in scenarios.SANDBOX_EXCHANGES for sc in scenarios.scenarios_for(ex)]


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with server.serve_in_thread(slow_latency_s=SLOW_LATENCY_S) as url:
        yield url


@pytest.fixture(autouse=True)
async def point_clients_at_sandbox(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    for exchange in scenarios.SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{sandbox_url}/{exchange}")
    monkeypatch.delenv("KEYMEDIC_DIAGNOSIS_DEADLINE", raising=False)
    reset_rate_limits()
    yield
    reset_rate_limits()
    # The shared client belongs to this test's event loop; close its connections with it.
    await aclose_shared_client()


def creds(exchange: str, scenario: str) -> Credentials:
    return Credentials.from_mapping(scenarios.credentials_for(exchange, scenario))


@pytest.mark.parametrize(("exchange", "scenario"), CASES, ids=[f"{ex}-{sc}" for ex, sc in CASES])
async def test_diagnosis_names_the_right_item(exchange: str, scenario: str) -> None:
    diagnosis = await diagnose(exchange, creds(exchange, scenario))
    failing = {o.item for o in diagnosis.failing()}
    summary = {o.item.value: o.status.value for o in diagnosis.items}

    assert diagnosis.outcome(Item.FORMAT).status is Status.PASS, "sandbox keys have real shapes"
    if scenario == "lockout":
        first = LOCKOUT_FIRST[exchange]
        if isinstance(first, Item):
            assert diagnosis.outcome(first).status is Status.FAIL, summary
        else:
            assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == first, summary
            assert failing == set(), summary
        return
    if scenario in UNAVAILABLE:
        assert diagnosis.unavailable is not None, summary
        assert diagnosis.unavailable.kind == UNAVAILABLE[scenario]
        assert failing == set(), summary
        return
    assert diagnosis.unavailable is None, diagnosis.unavailable
    if scenario in ("valid", "slow", "ed25519"):
        assert failing == set(), summary
        assert diagnosis.outcome(Item.KEY_KNOWN).status is Status.PASS
        assert diagnosis.outcome(Item.SECRET_OK).status is Status.PASS
        assert diagnosis.outcome(Item.HAS_ACTIVITY).status is Status.PASS
        return

    named = diagnosis.outcome(NAMED[scenario])
    expected = Status.UNKNOWN if (exchange, scenario) in AMBIGUOUS else Status.FAIL
    assert named.status is expected, summary
    assert named.fix, "the user is told what to do"
    assert failing <= {named.item} | ALSO_FAILING.get((exchange, scenario), set()), summary


async def test_slow_exchange_past_the_deadline_is_a_timeout_not_a_bad_key() -> None:
    diagnosis = await diagnose("okx", creds("okx", "slow"), deadline_s=SLOW_LATENCY_S / 2)
    assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == "timeout"
    assert diagnosis.failing() == ()


async def test_kraken_nonces_stay_increasing_across_diagnoses() -> None:
    # The sandbox rejects a nonce not above the key's last one, as Kraken does.
    for _ in range(3):
        diagnosis = await diagnose("kraken", creds("kraken", "valid"))
        assert diagnosis.all_passed, diagnosis.to_dict()


@pytest.mark.parametrize(("scenario", "exit_code"), [("valid", 0), ("wrong_secret", 1), ("down", 2)])
def test_keymedic_diagnose_cli_against_the_sandbox(scenario: str, exit_code: int) -> None:
    pasted = scenarios.credentials_for("kraken", scenario)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "diagnose", "--exchange", "kraken"],
        input=json.dumps(pasted),
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert result.returncode == exit_code, result.stderr
    assert json.loads(result.stdout)["exchange"] == "kraken"
    assert pasted["api_secret"] not in result.stdout + result.stderr


LOCKOUT_SIGNS = ("EGeneral:Temporary lockout", "HTTP 418", "HTTP 403")


@pytest.fixture
def fresh_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A sandbox of its own: the `lockout` key remembers earlier attempts, as the exchange would."""
    with server.serve_in_thread() as url:
        for exchange in scenarios.SANDBOX_EXCHANGES:
            monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{url}/{exchange}")
        yield url


@pytest.mark.parametrize("exchange", sorted(LOCKOUT_FIRST))
async def test_repeated_checks_never_trigger_the_exchanges_lockout(exchange: str, fresh_sandbox: str) -> None:
    """The sandbox's `lockout` key locks out (or bans) on a second attempt; KeyMedic never makes one: the
    resubmitted key, a burst of checks and other users are answered from the remembered refusal or ban."""
    results = [await diagnose(exchange, creds(exchange, "lockout"), user_id="user:1")]
    results += await asyncio.gather(
        *(diagnose(exchange, creds(exchange, "lockout"), user_id=f"user:{i}") for i in range(2, 8))
    )
    codes = {o.raw_code for d in results for o in d.items} | {
        d.unavailable.raw_code for d in results if d.unavailable
    }
    assert not any(str(code).startswith(LOCKOUT_SIGNS) for code in codes), codes
    assert all(d.failing() == () or d.outcome(Item.KEY_KNOWN).status is Status.FAIL for d in results)


async def test_a_burst_of_first_checks_of_a_refused_key_never_meets_the_lockout(fresh_sandbox: str) -> None:
    """Diagnoses of one key that start together (a double-submitted form, two tabs) wait for the first
    (bot/diagnosis/flight.py): one reaches Kraken, the others hear it was already refused."""
    results = await asyncio.gather(
        *(diagnose("kraken", creds("kraken", "lockout"), user_id=f"user:{i}") for i in range(5)),
        return_exceptions=True,
    )
    codes = {r.unavailable.raw_code for r in results if not isinstance(r, BaseException) and r.unavailable}
    assert not any(str(code).startswith(LOCKOUT_SIGNS) for code in codes), codes
    diagnoses = [r for r in results if not isinstance(r, BaseException)]
    assert len(diagnoses) == 5, results
    assert all(d.outcome(Item.KEY_KNOWN).status is Status.FAIL for d in diagnoses)
    assert sum(d.refused_before_s is None for d in diagnoses) == 1  # only the first asked Kraken


async def test_the_valid_family_keys_are_keys_of_their_own_that_pass(fresh_sandbox: str) -> None:
    """`valid-N` (the bench's 20 users): each passes like `valid`, and a wrong secret for it is refused, so
    the sandbox verifies its own signature."""
    diagnoses = await asyncio.gather(*(diagnose("kraken", creds("kraken", f"valid-{n}")) for n in (1, 2, 20)))
    assert all(d.all_passed for d in diagnoses), [d.to_dict() for d in diagnoses]
    keys = {creds("kraken", f"valid-{n}").api_key for n in (1, 2, 20)} | {creds("kraken", "valid").api_key}
    assert len(keys) == 4
    wrong = Credentials(creds("kraken", "valid-1").api_key, creds("kraken", "valid-2").api_secret)
    refused = await diagnose("kraken", wrong)
    assert refused.outcome(Item.SECRET_OK).status is Status.FAIL


async def test_without_keymedics_memory_the_second_attempt_is_locked_out(fresh_sandbox: str) -> None:
    """The control: the emulation is real, so the test above could fail."""
    await diagnose("kraken", creds("kraken", "lockout"))
    reset_rate_limits()  # forget the refusal, as a KeyMedic without it would
    again = await diagnose("kraken", creds("kraken", "lockout"))
    assert again.unavailable is not None
    assert again.unavailable.raw_code == "EGeneral:Temporary lockout"


@pytest.mark.parametrize("exchange", ["kraken", "gemini", "bitfinex"])
async def test_a_check_never_breaks_the_users_other_client_on_a_nonce_exchange(
    exchange: str, fresh_sandbox: str
) -> None:
    """Reference §0.2: the user's own client (here ccxt, millisecond nonces) keeps working after KeyMedic
    tested the same key, because KeyMedic never sends a nonce above the current millisecond."""
    import time
    from urllib.parse import urlsplit

    import httpx

    ccxt = pytest.importorskip("ccxt")
    fields = scenarios.credentials_for(exchange, "valid")
    call = {
        "kraken": ("Balance", "private", "POST"),
        "gemini": ("v1/balances", "private", "POST"),
        "bitfinex": ("auth/r/wallets", "private", "POST"),
    }[exchange]

    def users_client_call() -> httpx.Response:
        client = getattr(ccxt, exchange)({"apiKey": fields["api_key"], "secret": fields["api_secret"]})
        client.nonce = lambda: int(time.time() * 1000)
        signed = client.sign(*call, {})
        url = urlsplit(signed["url"])
        return httpx.request(
            call[2],
            f"{fresh_sandbox}/{exchange}{url.path}",
            headers=signed["headers"],
            content=signed["body"],
        )

    assert users_client_call().status_code == 200
    time.sleep(0.002)
    diagnosis = await diagnose(exchange, creds(exchange, "valid"))
    assert diagnosis.unavailable is None and diagnosis.failing() == ()
    time.sleep(0.002)
    after = users_client_call()
    assert after.status_code == 200, after.text
    assert "nonce" not in after.text.lower()
