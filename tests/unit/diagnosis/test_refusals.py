"""No check ever gets a key locked out: a credential the exchange refused is not sent again (the user is told
it was refused, and why), a key the exchange does not know is not sent with any secret, bans and stated waits
hold for the exchange (or, for Kraken's lockout, the key), and a burst of checks reaches the exchange at most
the key's budget of times. Entries are named by HMACs, never by the key."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bot.config import load_settings
from bot.diagnosis import diagnose, limits
from bot.diagnosis.refusals import MemorySignals, Refusals
from bot.types.diagnosis import Item, Status
from tests.unit.diagnosis.fakes import CREDENTIALS, credentials, fake, ok


def kraken_error(code: str) -> httpx.Response:
    return ok({"error": [code], "result": {}})


async def test_a_refused_credential_is_answered_from_memory_without_a_second_request() -> None:
    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": kraken_error("EAPI:Invalid signature")})
    first = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id="u1")
    again = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id="u2")

    assert len(exchange_fake.requests) == 1
    assert first.refused_before_s is None
    assert again.refused_before_s is not None and again.refused_before_s >= 0
    assert again.outcome(Item.SECRET_OK).status is Status.FAIL
    assert again.outcome(Item.SECRET_OK).fix == first.outcome(Item.SECRET_OK).fix
    assert again.to_dict()["refused_before_s"] == 0


async def test_a_corrected_secret_is_a_new_credential_and_is_tested() -> None:
    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": kraken_error("EAPI:Invalid signature")})
    await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    other_secret = credentials("kraken", api_secret="b" * 86 + "==")
    await diagnose("kraken", other_secret, client=exchange_fake.client())
    assert len(exchange_fake.requests) == 2


async def test_a_key_the_exchange_does_not_know_is_not_sent_again_with_any_secret() -> None:
    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": kraken_error("EAPI:Invalid key")})
    await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    again = await diagnose(
        "kraken", credentials("kraken", api_secret="b" * 86 + "=="), client=exchange_fake.client()
    )
    assert len(exchange_fake.requests) == 1
    assert again.outcome(Item.KEY_KNOWN).status is Status.FAIL
    assert again.refused_before_s is not None


async def test_kraken_lockout_holds_that_key_and_not_others() -> None:
    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": kraken_error("EGeneral:Temporary lockout")})
    first = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    again = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    assert first.unavailable is not None and first.unavailable.kind == "rate_limited"
    assert (
        again.unavailable is not None
        and again.unavailable.retry_after_s
        and again.unavailable.retry_after_s > 800
    )
    assert len(exchange_fake.requests) == 1
    other = credentials("kraken", api_key="Z" * 52 + "wxyz")
    await diagnose("kraken", other, client=exchange_fake.client())
    assert len(exchange_fake.requests) == 2


async def test_binance_ban_holds_the_whole_exchange_for_its_retry_after() -> None:
    banned = httpx.Response(418, headers={"Retry-After": "120"}, json={"code": -1003, "msg": "banned"})
    exchange_fake = fake("binance", {"/sapi/v1/account/apiRestrictions": banned})
    await diagnose("binance", credentials("binance"), client=exchange_fake.client())
    someone_else = credentials("binance", api_key="C" * 60 + "wxyz")
    later = await diagnose("binance", someone_else, client=exchange_fake.client())
    assert len(exchange_fake.requests) == 1
    assert later.unavailable is not None and later.unavailable.kind == "rate_limited"
    assert later.unavailable.retry_after_s is not None and 100 <= later.unavailable.retry_after_s <= 120
    assert later.failing() == ()


async def test_a_burst_with_a_refused_key_reaches_the_exchange_at_most_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYMEDIC_DIAGNOSIS_KEY_LIMIT", "3")
    monkeypatch.setenv("KEYMEDIC_DIAGNOSIS_RATE_LIMIT", "100")
    monkeypatch.setenv("KEYMEDIC_DIAGNOSIS_USER_LIMIT", "100")
    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": kraken_error("EAPI:Invalid key")})
    client = exchange_fake.client()

    async def one(i: int) -> object:
        try:
            return await diagnose("kraken", credentials("kraken"), client=client, user_id=f"u{i}")
        except Exception as error:  # DiagnosisRateLimited once the budget is spent
            return error

    await asyncio.gather(*(one(i) for i in range(20)))
    assert 1 <= len(exchange_fake.requests) <= 3
    await asyncio.gather(*(one(i) for i in range(20)))
    assert len(exchange_fake.requests) <= 3


def test_the_store_never_holds_the_key_or_secret() -> None:
    store = MemorySignals()
    refusals = Refusals(store, b"server-key")
    from bot.types.diagnosis import Diagnosis, ItemOutcome

    items = tuple(
        ItemOutcome(item, Status.FAIL if item is Item.KEY_KNOWN else Status.UNKNOWN) for item in Item
    )
    refusals.record("kraken", credentials("kraken"), Diagnosis("kraken", items), refused=True)
    dumped = json.dumps(list(store._entries.items()))
    assert CREDENTIALS["kraken"]["api_key"] not in dumped
    assert CREDENTIALS["kraken"]["api_secret"] not in dumped
    assert refusals.check("kraken", credentials("kraken")) is not None


def test_limiter_for_builds_refusal_memory() -> None:
    assert limits.limiter_for(load_settings()).refusals is not None


async def test_a_read_refused_after_the_key_was_accepted_is_not_a_refused_key() -> None:
    # Bybit accepted the key (query-api) and only the balance read lacks permission: the key may be fixed
    # on the exchange and tested again, so nothing is remembered.
    no_read = ok({"retCode": 10005, "retMsg": "Permission denied", "result": {}})
    exchange_fake = fake("bybit", {"/v5/account/wallet-balance": no_read})
    first = await diagnose("bybit", credentials("bybit"), client=exchange_fake.client())
    assert first.outcome(Item.READ_PERMISSION).status is Status.FAIL
    again = await diagnose("bybit", credentials("bybit"), client=exchange_fake.client())
    assert again.refused_before_s is None
    assert exchange_fake.paths().count("/v5/user/query-api") == 2


async def test_the_user_is_told_the_key_was_already_refused_and_why() -> None:
    from bot.assistant.replies import key_check_reply

    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": kraken_error("EAPI:Invalid key")})
    first = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    again = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    text = key_check_reply(again)
    assert "already refused this exact key" in text and "didn't send it again" in text
    assert first.outcome(Item.KEY_KNOWN).fix in text
    assert "already refused" not in key_check_reply(first)


async def test_a_per_account_rate_limit_holds_that_key_not_the_whole_exchange() -> None:
    limited = ok(
        {"retCode": 10006, "retMsg": "Too many visits!", "result": {}},
        **{"X-Bapi-Limit-Reset-Timestamp": str(int((__import__("time").time() + 30) * 1000))},
    )
    exchange_fake = fake("bybit", {"/v5/user/query-api": limited})
    await diagnose("bybit", credentials("bybit"), client=exchange_fake.client())
    sent = len(exchange_fake.requests)
    again = await diagnose("bybit", credentials("bybit"), client=exchange_fake.client())
    assert len(exchange_fake.requests) == sent  # held: the same key waits for its reset
    assert again.unavailable is not None and again.unavailable.kind == "rate_limited"
    other = credentials("bybit", api_key="QwE4rT6yU8iO1pA3sD")
    await diagnose("bybit", other, client=exchange_fake.client())
    assert len(exchange_fake.requests) > sent  # another account's key is not held
