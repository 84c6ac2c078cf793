"""An exchange that cannot be asked is reported as unavailable, never as a bad key: timeouts, a response
trickling past the deadline, 5xx, 429 with Retry-After, malformed JSON, connection refused, clock skew."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.diagnosis import diagnose
from bot.types.diagnosis import Diagnosis, Item, Status
from tests.unit.diagnosis.fakes import CREDENTIALS, VALID, FakeExchange, credentials, fake, ok

EXCHANGES = sorted(CREDENTIALS)


def gate_of(exchange: str) -> str:
    return next(iter(VALID[exchange]))


def assert_no_verdict_on_the_key(diagnosis: Diagnosis) -> None:
    assert diagnosis.failing() == ()
    assert diagnosis.outcome(Item.FORMAT).status is Status.PASS
    for item in (Item.KEY_KNOWN, Item.SECRET_OK, Item.HAS_ACTIVITY):
        assert diagnosis.outcome(item).status is Status.UNKNOWN


def exchange_times_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def exchange_refuses_connections(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def exchange_is_down(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="Service Unavailable")


def exchange_rate_limits_for_a_minute(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": "60"}, text="Too Many Requests")


def exchange_answers_html(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="<html><body>Cloudflare</body></html>")


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (exchange_times_out, "timeout"),
        (exchange_refuses_connections, "unreachable"),
        (exchange_is_down, "server_error"),
        (exchange_rate_limits_for_a_minute, "rate_limited"),
        (exchange_answers_html, "server_error"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
async def test_exchange_fault_is_unavailable_never_a_bad_key(
    exchange: str, handler: object, kind: str
) -> None:
    exchange_fake = FakeExchange({gate_of(exchange): handler})  # type: ignore[dict-item]
    diagnosis = await diagnose(exchange, credentials(exchange), client=exchange_fake.client(), deadline_s=0.4)
    assert diagnosis.unavailable is not None
    assert diagnosis.unavailable.kind == kind
    assert_no_verdict_on_the_key(diagnosis)
    if kind == "rate_limited":
        # Retry-After beyond the deadline: no retry, and the user is told how long to wait.
        assert diagnosis.unavailable.retry_after_s == 60.0
        assert len(exchange_fake.requests) == 1


async def test_a_response_trickling_past_the_deadline_is_a_timeout() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"error": [], '
        await asyncio.sleep(5)
        yield b'"result": {}}'

    exchange_fake = FakeExchange(
        {"/0/private/GetApiKeyInfo": lambda request: httpx.Response(200, content=trickle())}
    )
    started = asyncio.get_running_loop().time()
    diagnosis = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client(), deadline_s=0.3)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == "timeout"
    assert_no_verdict_on_the_key(diagnosis)


async def test_429_with_short_retry_after_is_retried_within_the_deadline() -> None:
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "0"}), *[VALID["okx"]["/api/v5/account/config"]] * 3]
    )
    exchange_fake = fake("okx", {"/api/v5/account/config": lambda request: next(answers)})
    diagnosis = await diagnose("okx", credentials("okx"), client=exchange_fake.client())
    assert diagnosis.unavailable is None
    assert exchange_fake.paths().count("/api/v5/account/config") == 2


async def test_clock_skew_is_its_own_outcome() -> None:
    exchange_fake = fake(
        "binance", {"/sapi/v1/account/apiRestrictions": ok({"code": -1021, "msg": "outside recvWindow"}, 400)}
    )
    diagnosis = await diagnose("binance", credentials("binance"), client=exchange_fake.client())
    assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == "clock_skew"
    assert diagnosis.unavailable.raw_code == "-1021"
    assert_no_verdict_on_the_key(diagnosis)


async def test_kraken_lockout_is_never_retried_and_says_to_wait() -> None:
    exchange_fake = fake(
        "kraken", {"/0/private/GetApiKeyInfo": ok({"error": ["EGeneral:Temporary lockout"]})}
    )
    diagnosis = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == "rate_limited"
    assert diagnosis.unavailable.retry_after_s == 900.0
    assert len(exchange_fake.requests) == 1


async def test_kraken_rate_limit_in_a_200_body_is_retried() -> None:
    answers = iter([ok({"error": ["EAPI:Rate limit exceeded"]}), VALID["kraken"]["/0/private/GetApiKeyInfo"]])
    exchange_fake = fake("kraken", {"/0/private/GetApiKeyInfo": lambda request: next(answers)})
    diagnosis = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    assert diagnosis.unavailable is None
    assert exchange_fake.paths().count("/0/private/GetApiKeyInfo") == 2


async def test_a_later_call_failing_keeps_what_the_gate_settled() -> None:
    exchange_fake = fake("binance", {"/api/v3/account": exchange_is_down})
    diagnosis = await diagnose(
        "binance", credentials("binance"), client=exchange_fake.client(), deadline_s=0.3
    )
    assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == "server_error"
    assert diagnosis.outcome(Item.KEY_KNOWN).status is Status.PASS
    assert diagnosis.outcome(Item.NO_TRADE_OR_WITHDRAW).status is Status.PASS
    assert diagnosis.outcome(Item.HAS_ACTIVITY).status is Status.UNKNOWN


async def test_independent_calls_run_concurrently() -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return VALID["okx"][request.url.path]  # type: ignore[return-value]

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    diagnosis = await diagnose("okx", credentials("okx"), client=client)
    assert diagnosis.unavailable is None
    assert peak == 2  # balance and bills together, after the gate call
