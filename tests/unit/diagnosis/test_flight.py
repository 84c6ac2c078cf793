"""One diagnosis of a key at a time (`bot.diagnosis.flight`): diagnoses of one key that start together wait
for the first and take its outcome (or, after a refusal, the "already refused" answer) instead of asking the
exchange again; other keys do not wait; a corrected secret is still tested, after the first; a resubmission
after the fact is tested afresh; a holder that died frees the lock with its TTL; only the owner releases; and
the shared store never holds a key or a secret."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.config import load_settings
from bot.diagnosis import diagnose, limits
from bot.diagnosis.flight import MemoryFlights, RedisFlights
from bot.diagnosis.service import reset_rate_limits
from bot.types.diagnosis import Diagnosis, Item, Status
from tests.support.redis import REDIS_URL, redis_namespace, redis_or_skip
from tests.unit.diagnosis.fakes import CREDENTIALS, VALID, credentials, ok


class SlowKraken:
    """Kraken's answers after `delay_s`, counting requests and how many were in flight at once."""

    def __init__(self, routes: dict[str, httpx.Response], delay_s: float = 0.05) -> None:
        self.routes = routes
        self.delay_s = delay_s
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        answer = self.routes.get(request.url.path)
        return answer if answer is not None else httpx.Response(404, json={"error": "no route"})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


def refusing(code: str) -> dict[str, httpx.Response]:
    return {"/0/private/GetApiKeyInfo": ok({"error": [code], "result": {}})}


def valid() -> dict[str, httpx.Response]:
    return {path: answer for path, answer in VALID["kraken"].items() if isinstance(answer, httpx.Response)}


async def burst(exchange: SlowKraken, n: int) -> list[Diagnosis]:
    """`n` users testing the same Kraken key at once, over one client on `exchange`."""
    client = exchange.client()
    return await asyncio.gather(
        *(diagnose("kraken", credentials("kraken"), client=client, user_id=f"user:{i}") for i in range(n))
    )


async def requests_of_one_check(**changes: str) -> int:
    """How many requests one check of a Kraken key (the default one, or with `changes`) makes on its own."""
    alone = SlowKraken(valid())
    await diagnose("kraken", credentials("kraken", **changes), client=alone.client())
    return len(alone.requests)


def hold_the_keys_lock(ttl_s: float) -> None:
    """Take the default Kraken key's flight lock as a holder that never releases it."""
    limiter = limits.limiter_for(load_settings())
    assert limiter.try_lock(limiter.ticket("kraken", credentials("kraken")), ttl_s) is None


async def test_a_burst_of_one_refused_key_reaches_the_exchange_once_and_hears_it_was_refused() -> None:
    exchange = SlowKraken(refusing("EAPI:Invalid key"))
    results = await burst(exchange, 5)
    assert len(exchange.requests) == 1
    assert all(r.outcome(Item.KEY_KNOWN).status is Status.FAIL for r in results)
    # The first heard it from the exchange, the others from the refusal memory ("already refused").
    assert sorted(r.refused_before_s is None for r in results) == [False] * 4 + [True]


async def test_a_burst_of_one_valid_credential_makes_one_check_and_shares_its_outcome() -> None:
    one = SlowKraken(valid())
    alone = await diagnose("kraken", credentials("kraken"), client=one.client())
    reset_rate_limits()

    exchange = SlowKraken(valid())
    results = await burst(exchange, 4)
    assert len(exchange.requests) == len(one.requests)
    assert all(r.to_dict()["items"] == alone.to_dict()["items"] for r in results)


async def test_a_resubmission_after_the_check_ended_is_tested_afresh() -> None:
    exchange = SlowKraken(valid())
    await diagnose("kraken", credentials("kraken"), client=exchange.client())
    once = len(exchange.requests)
    await diagnose("kraken", credentials("kraken"), client=exchange.client())
    assert len(exchange.requests) == 2 * once


async def test_a_corrected_secret_waits_for_the_check_in_flight_then_is_tested() -> None:
    exchange = SlowKraken(refusing("EAPI:Invalid signature"))
    client = exchange.client()
    corrected = credentials("kraken", api_secret=base64.b64encode(b"c" * 64).decode())
    first, second = await asyncio.gather(
        diagnose("kraken", credentials("kraken"), client=client),
        diagnose("kraken", corrected, client=client),
    )
    assert len(exchange.requests) == 2
    assert exchange.most_in_flight == 1  # one after the other, never together
    assert first.refused_before_s is None and second.refused_before_s is None


async def test_different_keys_do_not_wait_for_each_other() -> None:
    exchange = SlowKraken(valid(), delay_s=0.2)
    client = exchange.client()
    other = credentials("kraken", api_key="Z" * 52 + "wxyz")
    await asyncio.gather(
        diagnose("kraken", credentials("kraken"), client=client),
        diagnose("kraken", other, client=client),
    )
    assert exchange.most_in_flight == 2


async def test_a_lock_whose_holder_died_is_freed_by_its_ttl() -> None:
    hold_the_keys_lock(0.3)
    exchange = SlowKraken(valid())
    started = time.monotonic()
    result = await diagnose("kraken", credentials("kraken"), client=exchange.client())
    assert 0.25 <= time.monotonic() - started
    assert result.unavailable is None and exchange.requests


async def test_a_waiter_gives_up_after_the_locks_ttl_without_calling_the_exchange() -> None:
    hold_the_keys_lock(60)
    exchange = SlowKraken(valid())
    result = await diagnose("kraken", credentials("kraken"), client=exchange.client(), deadline_s=0.05)
    assert exchange.requests == []
    assert result.unavailable is not None and result.unavailable.kind == "timeout"
    assert result.failing() == ()


def test_memory_lock_only_the_owner_releases_and_the_ttl_frees_it() -> None:
    now = [0.0]
    flights = MemoryFlights(clock=lambda: now[0])
    assert flights.try_lock("lock:a", "t1", 5) is None
    assert flights.try_lock("lock:a", "t2", 5) == "t1"
    flights.unlock("lock:a", "t2")  # not the owner: nothing happens
    assert flights.try_lock("lock:a", "t3", 5) == "t1"
    now[0] = 5.0
    assert flights.try_lock("lock:a", "t3", 5) is None  # t1's TTL ran out
    flights.unlock("lock:a", "t1")  # t1 no longer holds it: t3 keeps it
    assert flights.try_lock("lock:a", "t4", 5) == "t3"
    flights.unlock("lock:a", "t3")
    assert flights.try_lock("lock:a", "t4", 5) is None


@pytest.fixture
def redis_flights() -> Iterator[RedisFlights]:
    client = redis_or_skip()
    with redis_namespace() as namespace:
        yield RedisFlights(client, prefix=f"{namespace}:diagnosis-flight")
    client.close()


def test_redis_lock_only_the_owner_releases_and_the_ttl_frees_it(redis_flights: RedisFlights) -> None:
    assert redis_flights.try_lock("lock:a", "t1", 0.3) is None
    assert redis_flights.try_lock("lock:a", "t2", 5) == "t1"
    redis_flights.unlock("lock:a", "t2")
    assert redis_flights.try_lock("lock:a", "t2", 5) == "t1"
    time.sleep(0.4)
    assert redis_flights.try_lock("lock:a", "t2", 5) is None
    redis_flights.unlock("lock:a", "t1")  # t1's lock expired; t2's stays
    assert redis_flights.try_lock("lock:a", "t3", 5) == "t2"
    redis_flights.unlock("lock:a", "t2")
    assert redis_flights.try_lock("lock:a", "t3", 5) is None


async def test_with_redis_a_burst_makes_one_check_and_redis_never_holds_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = redis_or_skip()
    with redis_namespace() as namespace:
        monkeypatch.setenv("KEYMEDIC_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("KEYMEDIC_REDIS_NAMESPACE", namespace)
        monkeypatch.setenv("KEYMEDIC_ENCRYPTION_KEYS", "k1:" + base64.urlsafe_b64encode(b"f" * 32).decode())
        try:
            one_check = await requests_of_one_check(api_key="Y" * 52 + "wxyz")
            exchange = SlowKraken(valid())
            results = await burst(exchange, 4)
            assert len(exchange.requests) == one_check
            assert all(r.unavailable is None for r in results)
            stored = b""
            for key in client.scan_iter(match=f"{namespace}:*"):
                stored += key + b"\n"
                if client.type(key) == b"string":
                    stored += client.get(key) or b""
        finally:
            reset_rate_limits()
            client.close()
    assert b"diagnosis-flight:outcome:" in stored
    secret, api_key = CREDENTIALS["kraken"]["api_secret"], CREDENTIALS["kraken"]["api_key"]
    assert secret.encode() not in stored and api_key.encode() not in stored
