"""`keymedic balancer`: a small reverse proxy in front of several Rasa replicas (docs/deploy.md).

- **HTTP** (the REST channel, Rasa's HTTP API, the agent API's relays): round-robin over the replicas that are
  up. A request whose connection to a replica could not even be opened is sent to the next replica (nothing
  reached the first one, so nothing can happen twice); a replica that fails after the request was sent gives
  the client a 502 and is never retried elsewhere, because the turn may already be in the tracker store.
- **socket.io**: sticky by Engine.IO session id. The long-polling handshake (`/socket.io/?EIO=4&transport=
  polling`, no `sid`) goes round-robin; the balancer reads the `sid` from the replica's open packet and sends
  every later request and the WebSocket upgrade carrying that `sid` to the same replica, because an Engine.IO
  session lives in one process. A WebSocket-only client (no `sid`) is round-robin. Replies reach the socket
  from any replica through the Redis client manager (`KEYMEDIC_SOCKETIO_REDIS_URL`).
- **Health**: a replica is taken out of the rotation when a connection to it fails, and probed every
  `probe_interval_s` (`GET /` for Rasa) so it comes back once it answers. The balancer answers
  `/health/live` and `/health/ready` itself (ready = at least one replica is up); those paths are not proxied.

- **Public edge** (`--public-prefix`, repeatable): when given, only paths under those prefixes are proxied
  (compose's public balancer: `/socket.io/` and `/webhooks/slack/`); everything else, Rasa's HTTP API above
  all, answers 404 without reaching a replica. Dot segments and percent-escapes are refused too, so no
  spelling of a path can climb out of a prefix on its way to Rasa's router.

Every proxied response carries `X-KeyMedic-Upstream: <replica name>`, so logs and tests can see who answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

__all__ = [
    "Backend",
    "Balancer",
    "UPSTREAM_HEADER",
    "parse_backend",
    "serve",
    "add_arguments",
    "run",
]

log = logging.getLogger(__name__)

UPSTREAM_HEADER: Final = "X-KeyMedic-Upstream"
# RFC 9110 §7.6.1: connection-specific headers never travel past one hop; Host is the upstream's own.
_HOP_BY_HOP: Final = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
    )
)
# Headers a WebSocket upgrade forwards: the channel checks Origin; cookies and auth belong to the client.
_WS_FORWARD: Final = ("Origin", "Cookie", "Authorization", "User-Agent", "X-Forwarded-For")
# Engine.IO's open packet: `0{"sid":"…",…}` (EIO 4) or `96:0{"sid":"…",…}` (EIO 3).
_OPEN_SID: Final = re.compile(rb'"sid"\s*:\s*"([^"]+)"')
_OWN_PATHS: Final = frozenset({"/health/live", "/health/ready"})


@dataclass
class Backend:
    """One replica: where it is, and until when it is out of the rotation."""

    name: str
    url: URL
    down_until: float = 0.0
    failures: int = 0

    def up(self, now: float) -> bool:
        return now >= self.down_until


def parse_backend(spec: str, index: int) -> Backend:
    """`name=http://host:port` or just `http://host:port` (named `backend-<index>`)."""
    name, _, raw = spec.rpartition("=") if "=" in spec.split("://", 1)[0] else ("", "", spec)
    url = URL(raw.strip())
    if url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/"):
        raise ValueError(f"a backend is http://host:port (optionally name=http://host:port), got {spec!r}")
    return Backend(name=name.strip() or f"backend-{index}", url=url.with_path(""))


@dataclass
class _Sticky:
    """Engine.IO session id -> the replica holding that session, forgotten after `ttl_s` idle."""

    ttl_s: float
    limit: int = 100_000
    _routes: OrderedDict[str, tuple[Backend, float]] = field(default_factory=OrderedDict)

    def get(self, sid: str, now: float) -> Backend | None:
        entry = self._routes.get(sid)
        if entry is None:
            return None
        backend, seen = entry
        if now - seen > self.ttl_s:
            del self._routes[sid]
            return None
        self._routes[sid] = (backend, now)
        self._routes.move_to_end(sid)
        return backend

    def put(self, sid: str, backend: Backend, now: float) -> None:
        self._routes[sid] = (backend, now)
        self._routes.move_to_end(sid)
        while len(self._routes) > self.limit:
            self._routes.popitem(last=False)

    def forget(self, sid: str) -> None:
        self._routes.pop(sid, None)

    def forget_backend(self, backend: Backend) -> None:
        for sid in [s for s, (b, _) in self._routes.items() if b is backend]:
            del self._routes[sid]

    def __len__(self) -> int:
        return len(self._routes)


class Balancer:
    """Round-robin HTTP, sticky socket.io, WebSocket pass-through; see the module docstring."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        sticky_prefix: str = "/socket.io",
        probe_path: str = "/",
        probe_interval_s: float = 2.0,
        cooldown_s: float = 5.0,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 330.0,
        sticky_ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        public_prefixes: Sequence[str] = (),
    ) -> None:
        if not backends:
            raise ValueError("the balancer needs at least one backend")
        self.backends = list(backends)
        self.sticky_prefix = sticky_prefix.rstrip("/")
        self.public_prefixes = tuple(public_prefixes)
        self.probe_path = probe_path
        self.probe_interval_s = probe_interval_s
        self.cooldown_s = cooldown_s
        # Rasa waits up to 5 minutes for an action and for a conversation's lock; the proxy must not give up
        # before Rasa does, or a user would see an error for a turn that is still being answered.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._probe_timeout = aiohttp.ClientTimeout(total=max(0.5, min(2.0, probe_interval_s)))
        self._clock = clock
        self._next = 0
        self.sticky = _Sticky(ttl_s=sticky_ttl_s)
        self._session: aiohttp.ClientSession | None = None
        self._prober: asyncio.Task[None] | None = None

    # -- choosing a replica --------------------------------------------------------------------------------

    def _rotation(self) -> list[Backend]:
        """Every backend once, starting at the next in turn; those up first (all of them when none is)."""
        n = len(self.backends)
        start, self._next = self._next % n, (self._next + 1) % n
        order = self.backends[start:] + self.backends[:start]
        now = self._clock()
        up = [b for b in order if b.up(now)]
        return up + [b for b in order if not b.up(now)]

    def mark_down(self, backend: Backend, *, sessions_lost: bool = True) -> None:
        """Take `backend` out of the rotation for `cooldown_s`.

        A refused connection means the process is gone (or restarting), and its Engine.IO sessions with it:
        they are forgotten, so their clients' next requests fail at once and they reconnect elsewhere. A slow
        probe proves no such thing (a busy replica still holds its sockets): `sessions_lost=False`.
        """
        backend.failures += 1
        backend.down_until = self._clock() + self.cooldown_s
        if sessions_lost:
            self.sticky.forget_backend(backend)
        log.warning("balancer: %s is down (%d failure(s))", backend.name, backend.failures)

    def _mark_up(self, backend: Backend) -> None:
        if backend.down_until:
            log.info("balancer: %s is up again", backend.name)
        backend.down_until = 0.0

    def _sid(self, request: web.Request) -> str | None:
        if not (request.path == self.sticky_prefix or request.path.startswith(self.sticky_prefix + "/")):
            return None
        return request.query.get("sid") or None

    # -- the aiohttp application ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        # Rasa's REST channel and tracker endpoints take JSON bodies; 10 MB fits any real tracker upload.
        application = web.Application(client_max_size=10 * 1024 * 1024)
        application.router.add_get("/health/live", self._live)
        application.router.add_get("/health/ready", self._ready)
        application.router.add_route("*", "/{tail:.*}", self._handle)
        application.cleanup_ctx.append(self._lifetime)
        return application

    async def _lifetime(self, _: web.Application) -> AsyncIterator[None]:
        # auto_decompress=False: bodies pass through byte for byte with their Content-Encoding.
        self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False, trust_env=False)
        if self.probe_interval_s > 0:
            self._prober = asyncio.create_task(self._probe_forever())
        yield
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        if self._session is not None:
            await self._session.close()

    async def probe(self) -> None:
        """Check every backend once: up when `GET probe_path` answers below 500."""
        assert self._session is not None
        for backend in self.backends:
            try:
                async with self._session.get(
                    backend.url.with_path(self.probe_path), timeout=self._probe_timeout
                ) as response:
                    healthy = response.status < 500
            except (aiohttp.ClientError, asyncio.TimeoutError):
                healthy = False
            if healthy:
                self._mark_up(backend)
            elif backend.up(self._clock()):
                self.mark_down(backend, sessions_lost=False)
            else:
                backend.down_until = self._clock() + self.cooldown_s

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await self.probe()
            except Exception:  # a probe must never stop the prober
                log.exception("balancer: probing failed")

    async def _live(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready(self, _: web.Request) -> web.Response:
        now = self._clock()
        states = {b.name: ("up" if b.up(now) else "down") for b in self.backends}
        ready = "up" in states.values()
        return web.json_response(
            {"status": "ok" if ready else "unavailable", "backends": states}, status=200 if ready else 503
        )

    def _is_public(self, request: web.Request) -> bool:
        """Whether an edge balancer may proxy this path: under a public prefix, spelled plainly."""
        if not self.public_prefixes:
            return True
        path = request.raw_path.split("?", 1)[0]
        if "%" in path or "\\" in path or any(part in (".", "..") for part in path.split("/")):
            return False
        return any(path.startswith(prefix) for prefix in self.public_prefixes)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._is_public(request):
            return _error(404, "not_public", None)
        sid = self._sid(request)
        now = self._clock()
        pinned = self.sticky.get(sid, now) if sid else None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, pinned)
        # A request of an Engine.IO session goes where the session lives, or nowhere: another replica would
        # only answer "unknown session", so the client is told to reconnect instead.
        candidates = [pinned] if pinned is not None else self._rotation()
        body = await request.read()
        for backend in candidates:
            try:
                return await self._forward(request, backend, body, sid)
            except aiohttp.ClientConnectorError:
                self.mark_down(backend)  # nothing was sent: the next replica may take the request
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                # The request was sent and may have been acted on: never replay it on another replica.
                if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
                    self.mark_down(backend)
                log.warning("balancer: %s failed mid-request: %s", backend.name, type(error).__name__)
                return _error(502, "upstream_failed", backend)
        return _error(503, "no_upstream", None)

    async def _forward(
        self, request: web.Request, backend: Backend, body: bytes, sid: str | None
    ) -> web.Response:
        assert self._session is not None
        async with self._session.request(
            request.method,
            _target(backend.url, request),
            headers=_forward_headers(request),
            data=body if body else None,
            allow_redirects=False,
        ) as upstream:
            content = await upstream.read()
            if sid is None and upstream.status == 200 and self._is_handshake(request):
                found = _OPEN_SID.search(content[:512])
                if found:
                    self.sticky.put(found.group(1).decode("ascii", "replace"), backend, self._clock())
            elif sid is not None and upstream.status == 400:
                self.sticky.forget(sid)  # the replica no longer knows the session; the client starts over
            headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP)
            headers[UPSTREAM_HEADER] = backend.name
            return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=content)

    def _is_handshake(self, request: web.Request) -> bool:
        path = request.path
        in_prefix = path == self.sticky_prefix or path.startswith(self.sticky_prefix + "/")
        return in_prefix and request.method == "GET" and request.query.get("transport") == "polling"

    async def _websocket(self, request: web.Request, pinned: Backend | None) -> web.StreamResponse:
        assert self._session is not None
        candidates = [pinned] if pinned is not None else self._rotation()
        headers = {h: request.headers[h] for h in _WS_FORWARD if h in request.headers}
        headers["X-Forwarded-For"] = _forwarded_for(request)
        protocols = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        for backend in candidates:
            url = _target(backend.url.with_scheme("wss" if backend.url.scheme == "https" else "ws"), request)
            try:
                upstream = await self._session.ws_connect(
                    url,
                    headers=headers,
                    protocols=protocols,
                    autoping=True,
                    timeout=self._timeout.sock_connect or 3.0,
                )
            except aiohttp.ClientConnectorError:
                self.mark_down(backend)
                continue
            except aiohttp.WSServerHandshakeError as refused:
                return _error(refused.status or 502, "upstream_refused_websocket", backend)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return _error(502, "upstream_failed", backend)
            downstream = web.WebSocketResponse(protocols=protocols, autoping=True)
            downstream.headers[UPSTREAM_HEADER] = backend.name
            await downstream.prepare(request)
            await _pipe(downstream, upstream)
            return downstream
        return _error(503, "no_upstream", None)


async def _pipe(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Relay frames both ways until either side closes, then close the other with the same code."""

    async def relay(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    ) -> None:
        async for message in source:
            if message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:  # CLOSE / ERROR end the relay
                break

    tasks = [
        asyncio.create_task(relay(downstream, upstream)),
        asyncio.create_task(relay(upstream, downstream)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
                await task
        code = upstream.close_code or downstream.close_code or aiohttp.WSCloseCode.GOING_AWAY
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await upstream.close(code=code)
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await downstream.close(code=code)


def _target(base: URL, request: web.Request) -> URL:
    # The path and query exactly as the client encoded them: decoding and re-encoding could change them.
    return URL(f"{base}{request.raw_path}", encoded=True)


def _forwarded_for(request: web.Request) -> str:
    prior = request.headers.get("X-Forwarded-For", "")
    peer = request.remote or ""
    return f"{prior}, {peer}" if prior and peer else (prior or peer)


def _forward_headers(request: web.Request) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
    )
    headers["X-Forwarded-For"] = _forwarded_for(request)
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    if request.host:
        headers.setdefault("X-Forwarded-Host", request.host)
    return headers


def _error(status: int, code: str, backend: Backend | None) -> web.Response:
    headers = {UPSTREAM_HEADER: backend.name} if backend is not None else {}
    return web.Response(
        status=status, text=json.dumps({"error": code}), content_type="application/json", headers=headers
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument(
        "--backend",
        action="append",
        required=True,
        help="a replica, name=http://host:port (repeat for each replica)",
    )
    parser.add_argument("--probe-path", default="/", help="health path probed on each replica (default /)")
    parser.add_argument(
        "--probe-interval", type=float, default=2.0, help="seconds between probes (default 2)"
    )
    parser.add_argument(
        "--public-prefix",
        action="append",
        default=[],
        help="proxy only paths under this prefix (repeat; e.g. /socket.io/ and /webhooks/slack/)",
    )


def run(args: argparse.Namespace) -> int:
    """`keymedic balancer`: serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        backends = [parse_backend(spec, i + 1) for i, spec in enumerate(args.backend)]
    except ValueError as error:
        print(f"keymedic balancer: {error}", flush=True)
        return 2
    balancer = Balancer(
        backends,
        probe_path=args.probe_path,
        probe_interval_s=args.probe_interval,
        public_prefixes=args.public_prefix,
    )
    asyncio.run(serve(balancer, args.host, args.port))
    return 0


async def serve(balancer: Balancer, host: str, port: int) -> None:
    """Listen on host:port until SIGINT or SIGTERM, then finish the open requests and stop."""
    runner = web.AppRunner(balancer.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        names = ", ".join(f"{b.name}={b.url}" for b in balancer.backends)
        print(f"balancer: ready on http://{host}:{port} -> {names}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
