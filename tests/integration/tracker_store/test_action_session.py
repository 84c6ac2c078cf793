"""Rasa's action calls reuse one kept connection, answer and fail as Rasa's own calls do, and never send a
call down a connection the server has dropped (a real aiohttp server on 127.0.0.1, Rasa's EndpointConfig)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from rasa_plugins import action_session, fast_json, startup

pytestmark = pytest.mark.integration

Serve = Callable[..., Awaitable[tuple[EndpointConfig, list[int]]]]


@pytest.fixture(autouse=True)
def installed() -> None:
    startup.install()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """An action-server stand-in; returns Rasa's endpoint for it and the client ports it saw, one a call."""
    runners: list[web.AppRunner] = []

    async def start(keepalive_s: float = 75.0) -> tuple[EndpointConfig, list[int]]:
        ports: list[int] = []

        async def webhook(request: web.Request) -> web.Response:
            ports.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
            body = await request.json()
            if body.get("fail"):
                return web.json_response({"error": "no"}, status=400)
            return web.json_response({"events": [], "responses": [{"text": body["next_action"]}]})

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app, keepalive_timeout=keepalive_s)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return EndpointConfig(url=f"http://127.0.0.1:{port}/webhook"), ports

    yield start
    await action_session.close_kept_sessions()
    for runner in runners:
        await runner.cleanup()


async def _call(endpoint: EndpointConfig, **body: Any) -> Any:
    return await endpoint.request(json={"next_action": "action_x", **body}, method="post", timeout=5)


async def test_calls_one_after_another_share_one_connection(serve: Serve) -> None:
    endpoint, ports = await serve()
    answers = [await _call(endpoint) for _ in range(5)]
    assert answers == [{"events": [], "responses": [{"text": "action_x"}]}] * 5
    assert len(set(ports)) == 1


async def test_calls_at_the_same_time_each_get_their_own_answer(serve: Serve) -> None:
    endpoint, ports = await serve()
    answers = await asyncio.gather(*(_call(endpoint, next_action=f"a{n}") for n in range(20)))
    assert [answer["responses"][0]["text"] for answer in answers] == [f"a{n}" for n in range(20)]
    assert len(ports) == 20


async def test_an_error_answer_raises_as_rasa_expects_and_the_next_call_works(serve: Serve) -> None:
    endpoint, _ = await serve()
    with pytest.raises(ClientResponseError) as raised:
        await _call(endpoint, fail=True)
    assert raised.value.status == 400
    assert await _call(endpoint) == {"events": [], "responses": [{"text": "action_x"}]}


async def test_an_idle_connection_is_let_go_before_the_server_drops_it(serve: Serve) -> None:
    # The server drops idle connections after 1 s more than this side keeps them (Sanic's 5 s is more still).
    endpoint, ports = await serve(keepalive_s=action_session.KEEPALIVE_S + 1.0)
    await _call(endpoint)
    await asyncio.sleep(action_session.KEEPALIVE_S + 0.5)  # this side has let go; the server has not yet
    assert await _call(endpoint) == {"events": [], "responses": [{"text": "action_x"}]}
    assert len(set(ports)) == 2


async def test_endpoints_with_other_headers_get_other_sessions(serve: Serve) -> None:
    endpoint, ports = await serve()
    other = EndpointConfig(url=endpoint.url, headers={"X-Other": "1"})
    await _call(endpoint)
    await _call(other)
    await _call(endpoint)
    assert len(set(ports)) == 2


EXITING_PROCESS = """
import asyncio
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig
from rasa_plugins import startup

startup.install()

async def main():
    async def webhook(request):
        return web.json_response({"events": [], "responses": []})
    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    endpoint = EndpointConfig(url=f"http://127.0.0.1:{runner.addresses[0][1]}/webhook")
    print(await endpoint.request(json={"next_action": "x"}, method="post"))
    await runner.cleanup()

asyncio.run(main())  # the loop closes with the kept session open, as Sanic's does at shutdown
"""


def test_a_process_ending_with_kept_sessions_logs_no_unclosed_session() -> None:
    import subprocess
    import sys

    from bot.config import PROJECT_ROOT

    ended = subprocess.run(
        [sys.executable, "-W", "default", "-c", EXITING_PROCESS],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode == 0, ended.stderr
    assert "{'events': [], 'responses': []}" in ended.stdout
    assert "Unclosed" not in ended.stderr


def test_request_bodies_encode_to_the_same_json_as_the_standard_library() -> None:
    import json

    body = {"text": "é / ü", "n": [1, 2.5, None, True], "nested": {"url": "http://127.0.0.1/x"}}
    assert json.loads(fast_json.dumps(body)) == json.loads(json.dumps(body))


def test_a_body_json_cannot_encode_fails_as_rasa_would_see_it_fail() -> None:
    with pytest.raises(TypeError):
        fast_json.dumps({"not json": object()})


def test_stored_text_decodes_to_the_same_values_as_the_standard_library() -> None:
    import json

    text = '{"event": "user", "timestamp": 1764170000.123456, "text": "h\\u00e9", "confidence": 0.9912345678}'
    assert fast_json.loads(text) == json.loads(text)
    assert fast_json.loads('{"x": NaN}')["x"] != fast_json.loads('{"x": NaN}')["x"]  # read as json does
    with pytest.raises(ValueError):
        fast_json.loads("{not json")
