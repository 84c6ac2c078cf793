"""Helpers for the history adapter tests: an exchange answered by a plain function on `httpx.MockTransport`,
a sleep that only records, and a way to run an adapter to the end."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from bot.exchanges._history import HistoryReader
from bot.exchanges._http import RetryPolicy
from bot.sandbox.scenarios import credentials_for
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction, WalletRef
from tests.support.clock import FakeClock

BASE_URL = "https://api.example.test"


class FakeSleep:
    """Records back-off delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeExchange:
    """Answers each request with `handler(request, params)`; `params` are the query, form body or JSON body
    (Gemini's payload header included), and every request is kept in `requests`."""

    def __init__(self, handler: Callable[[httpx.Request, dict[str, Any]], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.params: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = params_of(request)
        self.requests.append(request)
        self.params.append(params)
        return self.handler(request, params)

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, params) of every request, in order."""
        return [
            (request.url.path, params) for request, params in zip(self.requests, self.params, strict=True)
        ]


def params_of(request: httpx.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.url.params)
    payload = request.headers.get("X-GEMINI-PAYLOAD")
    if payload:
        import base64

        params.update(json.loads(base64.b64decode(payload)))
    elif request.content:
        if request.headers.get("Content-Type", "").startswith("application/json"):
            params.update(json.loads(request.content))
        else:
            params.update(parse_qsl(request.content.decode()))
    return params


def reader(
    cls: type[HistoryReader],
    exchange: FakeExchange,
    sleep: FakeSleep | None = None,
    *,
    deadline_clock: FakeClock | None = None,
    per_call_s: float = 30.0,
    **kwargs: Any,
) -> HistoryReader:
    """An adapter on `exchange`, with the sync's retry policy on a fake sleep and a fake clock: no test waits,
    and a per-call deadline runs out only when the test moves `deadline_clock` (`clock`, if given, is
    the adapter's own wall clock)."""
    policy = RetryPolicy(
        max_attempts=5,
        base_delay_s=1.0,
        max_delay_s=30.0,
        sleep=sleep or FakeSleep(),
        clock=deadline_clock or FakeClock(),
    )
    return cls(
        client=httpx.AsyncClient(transport=httpx.MockTransport(exchange)),
        base_url=BASE_URL,
        policy=policy,
        per_call_s=per_call_s,
        **kwargs,
    )


def creds(exchange: str) -> Credentials:
    """Well-formed credentials (the sandbox's `valid` key; nothing here talks to the sandbox)."""
    return Credentials.from_mapping(credentials_for(exchange, "valid"))


async def read_all(source: HistoryReader, exchange: str) -> list[list[SourceTransaction]]:
    pages: list[list[SourceTransaction]] = []
    async for page in source.pages(WalletRef(1, exchange, "main"), creds(exchange)):
        pages.append(list(page))
    return pages


def flat(pages: list[list[SourceTransaction]]) -> list[SourceTransaction]:
    return [tx for page in pages for tx in page]


def ok(body: object, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)
