"""diagnose() as a service: unsupported exchanges, the per-user/key rate limit, and the Diagnosis model."""

from __future__ import annotations

import json

import pytest

from bot.diagnosis import DiagnosisRateLimited, UnsupportedExchange, diagnose
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable
from tests.unit.diagnosis.fakes import FakeExchange, credentials, fake


@pytest.mark.parametrize("exchange", ["not_an_exchange", "mtgox"])
async def test_exchange_without_live_client_is_unsupported_and_not_contacted(exchange: str) -> None:
    exchange_fake = FakeExchange({})
    with pytest.raises(UnsupportedExchange):
        await diagnose(exchange, credentials("kraken"), client=exchange_fake.client())
    assert exchange_fake.requests == []


async def test_sixth_diagnosis_in_ten_minutes_is_refused_without_calling_the_exchange() -> None:
    exchange_fake = fake("kraken")
    for _ in range(5):
        await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id="u1")
    sent = len(exchange_fake.requests)
    with pytest.raises(DiagnosisRateLimited) as caught:
        await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id="u1")
    assert len(exchange_fake.requests) == sent
    assert 590 <= caught.value.retry_after_s <= 600
    assert "wait" in str(caught.value)


async def test_the_same_key_is_limited_whoever_submits_it() -> None:
    exchange_fake = fake("kraken")
    for n in range(5):
        await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id=f"user{n}")
    with pytest.raises(DiagnosisRateLimited):
        await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id="someone-else")


async def test_format_failures_do_not_count_towards_the_limit() -> None:
    exchange_fake = fake("kraken")
    bad = credentials("kraken", api_secret="not base64!")
    for _ in range(10):
        refused = await diagnose("kraken", bad, client=exchange_fake.client(), user_id="u1")
        assert refused.outcome(Item.FORMAT).status is Status.FAIL
    assert exchange_fake.paths() == []  # a malformed key is never sent
    diagnosis = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), user_id="u1")
    assert diagnosis.all_passed


async def test_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMEDIC_DIAGNOSIS_RATE_LIMIT", "1")
    exchange_fake = fake("gemini")
    await diagnose("gemini", credentials("gemini"), client=exchange_fake.client(), user_id="u1")
    with pytest.raises(DiagnosisRateLimited):
        await diagnose("gemini", credentials("gemini"), client=exchange_fake.client(), user_id="u1")


def _items(status: Status) -> tuple[ItemOutcome, ...]:
    return tuple(ItemOutcome(item, status) for item in Item)


def test_diagnosis_needs_one_outcome_per_item_in_order() -> None:
    with pytest.raises(ValueError, match="one outcome per Item"):
        Diagnosis("kraken", _items(Status.PASS)[1:])
    with pytest.raises(ValueError):
        Diagnosis("kraken", tuple(reversed(_items(Status.PASS))))


def test_diagnosis_helpers_and_json() -> None:
    items = list(_items(Status.PASS))
    items[2] = ItemOutcome(
        Item.SECRET_OK, Status.FAIL, fix="copy it again", raw_code="EAPI:Invalid signature"
    )
    items[7] = ItemOutcome(Item.NO_IP_RESTRICTION, Status.UNKNOWN, detail="not reported")
    diagnosis = Diagnosis("kraken", tuple(items), None, 0.1234)
    assert [o.item for o in diagnosis.failing()] == [Item.SECRET_OK]
    assert [o.item for o in diagnosis.unknown()] == [Item.NO_IP_RESTRICTION]
    assert not diagnosis.all_passed
    data = json.loads(json.dumps(diagnosis.to_dict()))
    assert data["items"][2] == {
        "item": "secret_ok",
        "status": "fail",
        "fix": "copy it again",
        "raw_code": "EAPI:Invalid signature",
        "detail": None,
    }
    assert data["elapsed_s"] == 0.123
    assert Diagnosis("kraken", _items(Status.PASS)).all_passed
    assert not Diagnosis("kraken", _items(Status.PASS), Unavailable("timeout", "slow")).all_passed
    assert Item.FORMAT == "format" and [i.value for i in Item][-1] == "has_activity"
