"""The shared HTTP policy: retries only for 429/5xx/network errors, Retry-After honoured within the deadline,
authentication errors sent exactly once, no request outliving the deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.exchanges._base import (
    AuthRejected,
    ExchangeTimeout,
    ExchangeUnreachable,
    RateLimited,
    ServerError,
    UnexpectedResponse,
)
from bot.exchanges._http import Deadline, RetryPolicy, Session, check_status, json_body, retry_after_s


class FakeSleep:
    """Records the back-off delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def decode(response: httpx.Response) -> object:
    check_status(response, "Test")
    if response.status_code == 401:
        raise AuthRejected("401", "no", ())
    return json_body(response, "Test")


def session_for(
    handler: httpx.MockTransport, *, deadline_s: float = 5.0, sleep: FakeSleep | None = None
) -> Session:
    return Session(
        httpx.AsyncClient(transport=handler),
        exchange="Test",
        base_url="https://api.example.test",
        deadline=Deadline(deadline_s),
        policy=RetryPolicy(sleep=sleep or FakeSleep()),
    )


def answers(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


async def test_429_with_retry_after_is_retried_after_that_many_seconds() -> None:
    sleep = FakeSleep()
    transport, seen = answers(
        httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"ok": 1})
    )
    result = await session_for(transport, sleep=sleep).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert result == {"ok": 1}
    assert sleep.delays == [2.0]
    assert len(seen) == 2


async def test_retry_after_beyond_the_deadline_gives_up_at_once_and_says_how_long() -> None:
    sleep = FakeSleep()
    transport, seen = answers(httpx.Response(429, headers={"Retry-After": "30"}))
    with pytest.raises(RateLimited) as caught:
        await session_for(transport, sleep=sleep).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert caught.value.retry_after_s == 30.0
    assert len(seen) == 1
    assert sleep.delays == []


async def test_5xx_is_retried_with_growing_backoff_then_reported() -> None:
    sleep = FakeSleep()
    transport, seen = answers(httpx.Response(503))
    with pytest.raises(ServerError):
        await session_for(transport, sleep=sleep).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert len(seen) == 3
    assert len(sleep.delays) == 2 and sleep.delays[0] < sleep.delays[1]


async def test_connection_refused_is_retried_then_reported_unreachable() -> None:
    transport, seen = answers(httpx.ConnectError("connection refused"))
    with pytest.raises(ExchangeUnreachable):
        await session_for(transport).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert len(seen) == 3


async def test_authentication_error_is_sent_exactly_once() -> None:
    transport, seen = answers(httpx.Response(401))
    with pytest.raises(AuthRejected):
        await session_for(transport).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert len(seen) == 1


async def test_malformed_json_is_not_retried() -> None:
    transport, seen = answers(httpx.Response(200, content=b"<html>gateway</html>"))
    with pytest.raises(UnexpectedResponse) as caught:
        await session_for(transport).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert "<html>" not in str(caught.value)
    assert len(seen) == 1


async def test_a_response_trickling_past_the_deadline_is_cut_off() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(20):
            await asyncio.sleep(0.05)
            yield b" "

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=trickle()))
    started = asyncio.get_running_loop().time()
    with pytest.raises(ExchangeTimeout):
        await session_for(transport, deadline_s=0.2).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert asyncio.get_running_loop().time() - started < 0.6


async def test_a_request_after_the_deadline_is_not_sent() -> None:
    transport, seen = answers(httpx.Response(200, json={}))
    with pytest.raises(ExchangeTimeout):
        await session_for(transport, deadline_s=0.0).call("GET", "/x", auth=httpx.Auth(), decode=decode)
    assert seen == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_s(httpx.Response(429)) is None
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "soon"})) is None


def test_418_ban_is_never_retried() -> None:
    with pytest.raises(RateLimited) as caught:
        check_status(httpx.Response(418), "Binance")
    assert caught.value.retryable is False


def test_httpcore_lock_setup_searches_no_path_for_a_missing_sniffio(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpcore tries `import sniffio` at every lock it sets up; with sniffio not installed each try used to
    search all of sys.path (issue 17's diagnosis bench). Once `bot.exchanges._http` is imported, none does."""
    import importlib.machinery

    from httpcore._synchronization import current_async_library

    if importlib.machinery.PathFinder.find_spec("sniffio") is not None:
        pytest.skip("sniffio is installed: its import is cached like any other")
    searched: list[str] = []
    original = importlib.machinery.PathFinder.find_spec

    def counting(name: str, *args: object, **kwargs: object) -> object:
        searched.append(name)
        return original(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", counting)

    async def in_a_loop() -> str:
        return current_async_library()

    assert asyncio.run(in_a_loop()) == "asyncio"
    assert "sniffio" not in searched
