"""HAProxy, configured by bot.cluster.haproxy, between real HTTP servers and real socket.io servers on this
machine (no Rasa needed): the guarantees the cluster and compose rely on."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web
from yarl import URL

from bot.cluster.haproxy import COOKIE, UPSTREAM_HEADER, Frontend, Server, command, render
from bot.launcher import free_port
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

        async def probe(request: web.Request) -> web.Response:
            return web.Response(text="ok")  # HAProxy's health checks, not counted as hits

        app.router.add_get("/", echo)
        app.router.add_get("/probe", probe)
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
    port: int
    upstreams: list[Upstream]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, path: str, status: int, timeout: float = 10.0) -> None:
        """Until HAProxy answers `path` with `status`: its probes have caught up with the servers."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"{self.url}{path}") as response:
                        if response.status == status:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, f"{path} never answered {status}"
                await asyncio.sleep(0.05)


StartProxy = Callable[..., Awaitable[Proxy]]


@pytest.fixture
async def start_proxy(tmp_path: Path) -> AsyncIterator[StartProxy]:
    processes: list[subprocess.Popen[bytes]] = []
    upstreams: list[Upstream] = []

    async def start(names: list[str], *, dead: int = 0, **options: Any) -> Proxy:
        started = [Upstream(name) for name in names]
        for upstream in started:
            await upstream.start()
        upstreams.extend(started)
        # `dead` servers are ports nothing listens on: a replica that was killed.
        servers = [Server(u.name, "127.0.0.1", u.port) for u in started] + [
            Server(f"dead-{i}", "127.0.0.1", free_port()) for i in range(dead)
        ]
        port = free_port()
        config = tmp_path / f"haproxy-{port}.cfg"
        frontend = Frontend(
            "rasa",
            f"127.0.0.1:{port}",
            tuple(servers),
            **{"check_interval_ms": 200, "probe_path": "/probe", **options},
        )
        config.write_text(render(frontend))
        with (tmp_path / f"haproxy-{port}.log").open("wb") as log:
            process = subprocess.Popen(command(config), stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        proxy = Proxy(port, started, process)
        await proxy.wait_for("/health/live", 200)
        return proxy

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
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
    assert set(seen) == {"a", "b"}
    assert all(one != next_one for one, next_one in zip(seen, seen[1:], strict=False))  # they take turns


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
            assert await response.json() == {"status": "ok"}
    assert proxy.upstreams[0].hits == 4


async def test_a_request_the_replica_received_is_never_replayed_elsewhere(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{proxy.url}/hang-up", data=b"turn") as response:
            assert response.status == 502
            assert await response.json() == {"error": "upstream_failed"}
    # Exactly one replica saw the request; the other never got a replay of it.
    assert sorted(u.hits for u in proxy.upstreams) == [0, 1]


async def test_a_kept_alive_client_whose_replica_dies_mid_request_gets_a_502_too(
    start_proxy: StartProxy,
) -> None:
    """A client that keeps its connection (the web app, the tests) gets no bare hang-up when the replica dies
    after its request arrived: HAProxy answers 502, as for a first request, and replays nothing."""
    proxy = await start_proxy(["a"])
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # the client connection, and HAProxy's to the replica, are in use and kept
            async with http.get(f"{proxy.url}/echo/x") as response:
                assert response.status == 200
        async with http.post(f"{proxy.url}/hang-up", data=b"turn") as response:
            assert response.status == 502
            assert await response.json() == {"error": "upstream_failed"}
    assert proxy.upstreams[0].hits == 4


async def test_no_replica_up_is_a_clear_503(start_proxy: StartProxy) -> None:
    proxy = await start_proxy([], dead=2)
    await proxy.wait_for("/health/ready", 503)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{proxy.url}/echo/x") as response:
            assert response.status == 503
            assert await response.json() == {"error": "no_upstream"}
        async with http.get(f"{proxy.url}/health/live") as response:
            assert response.status == 200


async def _upstreams_answering(proxy: Proxy, requests: int) -> set[str]:
    async with aiohttp.ClientSession() as http:
        names = set()
        for _ in range(requests):
            async with http.get(f"{proxy.url}/echo/x") as response:
                assert response.status == 200
                names.add(response.headers[UPSTREAM_HEADER])
    return names


async def test_the_probe_brings_a_replica_back(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    b = proxy.upstreams[1]
    await b.stop()
    # The first refused connection takes b out of the rotation; its request goes to a instead.
    assert await _upstreams_answering(proxy, 4) == {"a"}
    await b.start()
    deadline = time.monotonic() + 10
    while await _upstreams_answering(proxy, 2) != {"a", "b"}:
        assert time.monotonic() < deadline, "b never came back"
        await asyncio.sleep(0.1)


async def _socket_session(url: str, *, upgrade: bool, source: str = "127.0.0.1") -> tuple[str, str, str]:
    """One socket.io session through HAProxy from `source`: (hello's server, pong's server, origin)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        client = EngineIO(http, url)
        await (client.open_polling_then_upgrade() if upgrade else client.open_websocket())
        try:
            hello = await client.event("hello")
            await client.emit("ping_me", {"n": 1})
            pong = await client.event("pong_you")
            return hello["server"], pong["server"], hello["origin"]
        finally:
            await client.close()


# Users on different addresses (all of 127/8 is this machine).
SOURCES = [f"127.0.0.{i}" for i in range(1, 13)]


async def test_socketio_long_polling_and_its_upgrade_stay_on_one_replica(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    servers = []
    for source in SOURCES:
        hello_from, pong_from, origin = await _socket_session(proxy.url, upgrade=True, source=source)
        # Without stickiness every other polling request would hit the replica that never heard of the sid.
        assert hello_from == pong_from
        assert origin == "http://widget.test"
        servers.append(hello_from)
    assert set(servers) == {"a", "b"}  # sessions of different users are still spread over the replicas


async def test_socketio_over_websocket_only_passes_through(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    servers = set()
    for source in SOURCES:
        hello_from, pong_from, _ = await _socket_session(proxy.url, upgrade=False, source=source)
        assert hello_from == pong_from
        servers.add(hello_from)
    assert servers == {"a", "b"}


async def test_the_replica_cookie_pins_a_socketio_client_that_sends_it_back(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    handshake = f"{proxy.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(handshake) as response:
            assert response.status == 200
            by_address = response.headers[UPSTREAM_HEADER]
            assert response.cookies[COOKIE].value == by_address
        other = "b" if by_address == "a" else "a"
        for _ in range(3):
            async with http.get(handshake, headers={"Cookie": f"{COOKIE}={other}"}) as response:
                assert response.status == 200
                assert response.headers[UPSTREAM_HEADER] == other


async def test_a_session_of_a_dead_replica_ends_so_the_client_starts_over(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(["a", "b"])
    async with aiohttp.ClientSession() as http:
        client = EngineIO(http, proxy.url)
        async with http.get(client._url("polling"), headers=client.headers) as response:
            holder = response.headers[UPSTREAM_HEADER]
            client.sid = json.loads((await response.text())[1:])["sid"]
        await next(u for u in proxy.upstreams if u.name == holder).stop()
        async with http.get(client._url("polling"), headers=client.headers) as response:
            # The session's replica is gone and the other one never heard of the sid: start over.
            assert response.status == 400
            assert response.headers[UPSTREAM_HEADER] != holder
    # A fresh session lands on the replica that is still there.
    hello_from, pong_from, _ = await _socket_session(proxy.url, upgrade=True)
    assert hello_from == pong_from != holder


async def test_a_public_edge_forwards_only_its_prefixes_in_any_spelling(start_proxy: StartProxy) -> None:
    """compose's edge: the channel webhooks pass; Rasa's HTTP API is not there, however it is spelled."""
    proxy = await start_proxy(
        ["a"],
        public_prefixes=("/echo/socket.io/", "/echo/webhooks/slack/"),
        socketio_prefix="/echo/socket.io/",
    )
    async with aiohttp.ClientSession() as http:
        for path in ("/echo/socket.io/?EIO=4&transport=polling", "/echo/webhooks/slack/webhook"):
            async with http.get(f"{proxy.url}{path}") as response:
                assert response.status == 200, path
        for path in (
            "/echo/conversations/demo/tracker",
            "/echo/model",
            "/",
            "/echo/socket.io/../conversations/demo/tracker",
            "/echo/socket.io/./../model",
            "/echo/socket.io/..",
            "/echo/socket.io/%2e%2e/conversations/demo/tracker",
            "/echo/webhooks/slack/..%2fmodel",
            "/echo/webhooks/slack/..\\model",
            "/echo/socket.io",  # the prefix without its slash is another path
        ):
            # yarl would tidy dot segments: send the path exactly as written.
            async with http.get(URL(f"{proxy.url}{path}", encoded=True)) as response:
                assert response.status == 404, path
                assert (await response.json()) == {"error": "not_public"}
    assert proxy.upstreams[0].hits == 2


async def test_the_access_log_is_json_without_query_strings(start_proxy: StartProxy, tmp_path: Path) -> None:
    proxy = await start_proxy(["a"])
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{proxy.url}/echo/x?token=s3cret-in-a-query") as response:
            assert response.status == 200
    log = tmp_path / f"haproxy-{proxy.port}.log"
    deadline = time.monotonic() + 5
    while '"path":"/echo/x"' not in log.read_text():  # HAProxy writes the line once the response is sent
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.05)
    [line] = [json.loads(x) for x in log.read_text().splitlines() if '"path":"/echo/x"' in x]
    assert (line["server"], line["status"], line["method"]) == ("a", 200, "GET")
    assert "s3cret" not in log.read_text()
