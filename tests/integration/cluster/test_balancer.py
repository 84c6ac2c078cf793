"""The balancer between real HTTP servers and real socket.io servers on this machine (no Rasa needed)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web
from yarl import URL

from bot.cluster.balancer import UPSTREAM_HEADER, Backend, Balancer, parse_backend
from tests.helpers import free_port
from tests.integration.cluster.engineio_client import EngineIO

pytestmark = pytest.mark.integration


@dataclass
class Upstream:
    """One backend: an aiohttp app that says who it is, echoes what it got, and hosts a socket.io server."""

    name: str
    port: int = field(default_factory=free_port)
    hits: int = 0
    runner: web.AppRunner | None = None
    sio: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        app = web.Application()
        self.sio.attach(app)
        name = self.name

        @self.sio.on("connect")
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            # The origin reaches the replica through the balancer (the widget channel checks it).
            await self.sio.emit("hello", {"server": name, "origin": environ.get("HTTP_ORIGIN")}, to=sid)

        @self.sio.on("ping_me")
        async def ping_me(sid: str, data: Any) -> None:
            await self.sio.emit("pong_you", {"server": name, "data": data}, to=sid)

        async def echo(request: web.Request) -> web.Response:
            self.hits += 1
            body = await request.read()
            return web.json_response(
                {
                    "server": name,
                    "method": request.method,
                    "path_qs": request.raw_path,
                    "body": body.decode(),
                    "forwarded_for": request.headers.get("X-Forwarded-For"),
                    "custom": request.headers.get("X-Custom"),
                },
                headers={"X-Backend-Set": name},
            )

        async def hang_up(request: web.Request) -> web.StreamResponse:
            # The request arrived, then the replica "dies" before answering.
            self.hits += 1
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.2)
            return web.Response()

        app.router.add_get("/", echo)
        app.router.add_route("*", "/echo/{tail:.*}", echo)
        app.router.add_post("/hang-up", hang_up)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@dataclass
class Proxy:
    balancer: Balancer
    port: int
    upstreams: list[Upstream]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


StartProxy = Callable[..., Awaitable[Proxy]]


@pytest.fixture
async def start_proxy() -> AsyncIterator[StartProxy]:
    runners: list[web.AppRunner] = []
    upstreams: list[Upstream] = []

    async def start(names: list[str], *, dead: int = 0, **options: Any) -> Proxy:
        started = [Upstream(name) for name in names]
        for upstream in started:
            await upstream.start()
        upstreams.extend(started)
        # `dead` backends are ports nothing listens on: a replica that was killed.
        specs = [f"{u.name}={u.url}" for u in started] + [
            f"dead-{i}=http://127.0.0.1:{free_port()}" for i in range(dead)
        ]
        backends = [parse_backend(spec, i) for i, spec in enumerate(specs)]
        balancer = Balancer(backends, **{"probe_interval_s": 0, **options})
        runner = web.AppRunner(balancer.app())
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return Proxy(balancer, port, started)

    yield start
    for runner in runners:
        await runner.cleanup()
    for upstream in upstreams:
        await upstream.stop()


async def test_http_requests_take_turns_and_arrive_whole(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    seen = []
    async with aiohttp.ClientSession() as http:
        for i in range(6):
            async with http.post(
                f"{proxy.url}/echo/webhooks/rest/webhook?x=1&y=%20z",
                data=json.dumps({"sender": "u", "message": f"hi {i}"}),
                headers={"Content-Type": "application/json", "X-Custom": "kept"},
            ) as response:
                assert response.status == 200
                answer = await response.json()
                assert response.headers[UPSTREAM_HEADER] == answer["server"]
                assert response.headers["X-Backend-Set"] == answer["server"]
                seen.append(answer["server"])
                assert answer["method"] == "POST"
                assert answer["path_qs"] == "/echo/webhooks/rest/webhook?x=1&y=%20z"
                assert json.loads(answer["body"]) == {"sender": "u", "message": f"hi {i}"}
                assert answer["custom"] == "kept"
                assert answer["forwarded_for"] == "127.0.0.1"
    assert seen == ["a", "b", "a", "b", "a", "b"]


async def test_a_replica_that_refuses_connections_is_skipped_without_an_error(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(["a"], dead=1)
    async with aiohttp.ClientSession() as http:
        for _ in range(4):
            async with http.get(f"{proxy.url}/echo/x") as response:
                assert response.status == 200
                assert response.headers[UPSTREAM_HEADER] == "a"
        async with http.get(f"{proxy.url}/health/ready") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "backends": {"a": "up", "dead-0": "down"}}
    assert proxy.upstreams[0].hits == 4


async def test_a_request_the_replica_received_is_never_replayed_elsewhere(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{proxy.url}/hang-up", data=b"turn") as response:
            assert response.status == 502
            assert await response.json() == {"error": "upstream_failed"}
            failed = response.headers[UPSTREAM_HEADER]
    # Exactly one replica saw the request; the other never got a replay of it.
    assert {u.name: u.hits for u in proxy.upstreams} == {
        u.name: (1 if u.name == failed else 0) for u in proxy.upstreams
    }


async def test_no_replica_up_is_a_clear_503(start_proxy: StartProxy) -> None:
    proxy = await start_proxy([], dead=2)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{proxy.url}/echo/x") as response:
            assert response.status == 503
            assert await response.json() == {"error": "no_upstream"}
        async with http.get(f"{proxy.url}/health/ready") as response:
            assert response.status == 503
        async with http.get(f"{proxy.url}/health/live") as response:
            assert response.status == 200


async def test_the_prober_brings_a_replica_back(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"], cooldown_s=60.0)
    b: Backend = proxy.balancer.backends[1]
    proxy.balancer.mark_down(b)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"{proxy.url}/echo/x") as response:
                assert response.headers[UPSTREAM_HEADER] == "a"
    await proxy.balancer.probe()  # b answers its probe, so it is back in the rotation at once
    assert b.down_until == 0.0
    async with aiohttp.ClientSession() as http:
        names = set()
        for _ in range(2):
            async with http.get(f"{proxy.url}/echo/x") as response:
                names.add(response.headers[UPSTREAM_HEADER])
    assert names == {"a", "b"}


async def _socket_session(url: str, *, upgrade: bool) -> tuple[str, str, str]:
    """One socket.io session through the balancer; returns (hello's server, pong's server, origin seen)."""
    async with aiohttp.ClientSession() as http:
        client = EngineIO(http, url)
        await (client.open_polling_then_upgrade() if upgrade else client.open_websocket())
        try:
            hello = await client.event("hello")
            await client.emit("ping_me", {"n": 1})
            pong = await client.event("pong_you")
            return hello["server"], pong["server"], hello["origin"]
        finally:
            await client.close()


async def test_socketio_long_polling_and_its_upgrade_stay_on_one_replica(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    servers = []
    for _ in range(6):
        hello_from, pong_from, origin = await _socket_session(proxy.url, upgrade=True)
        # Without stickiness every other polling request would hit the replica that never heard of the sid.
        assert hello_from == pong_from
        assert origin == "http://widget.test"
        servers.append(hello_from)
    assert set(servers) == {"a", "b"}  # new sessions are still spread over the replicas
    assert len(proxy.balancer.sticky) == 6


async def test_socketio_over_websocket_only_passes_through(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    servers = set()
    for _ in range(4):
        hello_from, pong_from, _ = await _socket_session(proxy.url, upgrade=False)
        assert hello_from == pong_from
        servers.add(hello_from)
    assert servers == {"a", "b"}


async def test_a_session_of_a_dead_replica_is_forgotten_so_the_client_starts_over(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(["a", "b"])
    async with aiohttp.ClientSession() as http:
        client = EngineIO(http, proxy.url)
        [opened] = await client._poll()
        client.sid = json.loads(opened[1:])["sid"]
        holder = proxy.balancer.sticky.get(client.sid, time.monotonic())
        assert holder is not None
        await next(u for u in proxy.upstreams if u.name == holder.name).stop()
        async with http.get(client._url("polling")) as response:
            # The session's replica is gone and no other one knows the sid: the client must start over.
            assert response.status == 503
        assert proxy.balancer.sticky.get(client.sid, time.monotonic()) is None
    # A fresh session lands on the replica that is still there.
    hello_from, pong_from, _ = await _socket_session(proxy.url, upgrade=True)
    assert hello_from == pong_from != holder.name


async def test_a_public_edge_forwards_only_its_prefixes_in_any_spelling(start_proxy: StartProxy) -> None:
    """compose's edge: the channel webhooks pass; Rasa's HTTP API is not there, however it is spelled."""
    proxy = await start_proxy(["a"], public_prefixes=["/echo/socket.io/", "/echo/webhooks/slack/"])
    async with aiohttp.ClientSession() as http:
        for path in ("/echo/socket.io/?EIO=4&transport=polling", "/echo/webhooks/slack/webhook"):
            async with http.get(f"{proxy.url}{path}") as response:
                assert response.status == 200, path
        for path in (
            "/echo/conversations/demo/tracker",
            "/echo/model",
            "/",
            "/echo/socket.io/../conversations/demo/tracker",
            "/echo/socket.io/%2e%2e/conversations/demo/tracker",
            "/echo/webhooks/slack/..%2fmodel",
            "/echo/socket.io",  # the prefix without its slash is another path
        ):
            # yarl would tidy dot segments: send the path exactly as written.
            async with http.get(URL(f"{proxy.url}{path}", encoded=True)) as response:
                assert response.status == 404, path
                assert (await response.json()) == {"error": "not_public"}
    assert proxy.upstreams[0].hits == 2
