"""The sandbox's HTTP server: one port, one prefix per exchange (`/kraken/0/private/Balance`).

The prefix is stripped before an exchange module sees the request, so clients sign the exchange's own path
(`/0/private/Balance`); host-bound schemes (Coinbase's JWT `uri`, Bitstamp's signed host) use the request's
Host header. Every answer waits the global latency (`KEYMEDIC_SANDBOX_LATENCY`) plus the `slow` key's own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from bot.config import load_settings
from bot.observability.web import register_aiohttp
from bot.sandbox._common import Clock, ExchangeSandbox, SandboxRequest
from bot.sandbox._history import DEFAULT_HISTORY_SIZE
from bot.sandbox.binance import BinanceSandbox, BinanceUsSandbox
from bot.sandbox.bitfinex import BitfinexSandbox
from bot.sandbox.bitstamp import BitstampSandbox
from bot.sandbox.bybit import BybitSandbox
from bot.sandbox.coinbase import CoinbaseSandbox
from bot.sandbox.crypto_com import CryptoComSandbox
from bot.sandbox.gate_io import GateSandbox
from bot.sandbox.gemini import GeminiSandbox
from bot.sandbox.kraken import KrakenSandbox
from bot.sandbox.kucoin import KucoinSandbox
from bot.sandbox.okx import OkxSandbox

__all__ = ["build_app", "build_sandboxes", "serve_in_thread", "start", "SANDBOX_CLASSES"]

SANDBOX_CLASSES: tuple[type[ExchangeSandbox], ...] = (
    CoinbaseSandbox,
    KrakenSandbox,
    KucoinSandbox,
    BinanceSandbox,
    BinanceUsSandbox,
    OkxSandbox,
    GeminiSandbox,
    BitstampSandbox,
    BybitSandbox,
    GateSandbox,
    CryptoComSandbox,
    BitfinexSandbox,
)

START_TIMEOUT_S = 10.0

_SANDBOXES_KEY = web.AppKey("sandboxes", dict[str, ExchangeSandbox])


def build_sandboxes(
    slow_latency_s: float, clock: Clock = time.time, history_size: int = DEFAULT_HISTORY_SIZE
) -> dict[str, ExchangeSandbox]:
    """One instance per exchange, each with its own nonce memory."""
    return {
        cls.exchange_id: cls(clock=clock, slow_latency_s=slow_latency_s, history_size=history_size)
        for cls in SANDBOX_CLASSES
    }


def build_app(
    latency_s: float | None = None,
    slow_latency_s: float | None = None,
    clock: Clock = time.time,
    history_size: int | None = None,
) -> web.Application:
    """The aiohttp app; latencies default to `KEYMEDIC_SANDBOX_LATENCY` and `…_SLOW_LATENCY`, the history
    size to `KEYMEDIC_SANDBOX_HISTORY_SIZE`."""
    settings = load_settings()
    latency = settings.sandbox_latency_s if latency_s is None else latency_s
    slow = settings.sandbox_slow_latency_s if slow_latency_s is None else slow_latency_s
    size = settings.sandbox_history_size if history_size is None else history_size
    sandboxes = build_sandboxes(slow, clock, size)

    async def index(request: web.Request) -> web.Response:
        return web.json_response(
            {"sandbox": "keymedic", "exchanges": sorted(sandboxes), "docs": "docs/sandbox.md"}
        )

    async def dispatch(request: web.Request) -> web.StreamResponse:
        sandbox = sandboxes.get(request.match_info["exchange"])
        if sandbox is None:
            return web.json_response(
                {"error": "unknown exchange prefix", "exchanges": sorted(sandboxes)}, status=404
            )
        raw_path, _, raw_query = request.raw_path.partition("?")
        prefix_length = len(sandbox.exchange_id) + 1
        answer = sandbox.handle(
            SandboxRequest(
                method=request.method,
                path=raw_path[prefix_length:] or "/",
                raw_query=raw_query,
                headers=dict(request.headers),
                body=await request.read(),
                host=request.host,
                remote=request.remote or "",
            )
        )
        delay = latency + answer.delay_s
        if delay > 0:
            await asyncio.sleep(delay)
        headers = {"Content-Type": answer.content_type, **dict(answer.headers)}
        if answer.cut:
            return await _cut_midway(request, answer.status, answer.body, headers)
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    app = web.Application()
    app[_SANDBOXES_KEY] = sandboxes
    app.router.add_get("/", index)
    # /health/live and /health/ready, and request ids in the logs; before the catch-all route below.
    register_aiohttp(app, metrics=False)
    app.router.add_route("*", "/{exchange}/{tail:.*}", dispatch)
    return app


async def _cut_midway(
    request: web.Request, status: int, body: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """Announce the whole body, send half of it, and drop the connection: a client sees a truncated read."""
    response = web.StreamResponse(status=status, headers={**headers, "Content-Length": str(len(body))})
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving `app`; the runner (for cleanup) and the port actually bound (port 0 picks one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


@contextmanager
def serve_in_thread(
    latency_s: float = 0.0,
    slow_latency_s: float | None = None,
    clock: Clock = time.time,
    host: str = "127.0.0.1",
    history_size: int | None = None,
) -> Iterator[str]:
    """Run the sandbox on a free port in a thread; yields its base URL once it accepts connections."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    # Set from the caller's thread through `call_soon_threadsafe`: the loop sleeps until then, instead of
    # waking to poll a flag (20 polling sandboxes in the diagnosis bench took ~5 % of a core and kept
    # asking the client's thread for the GIL, issue 17).
    stop = asyncio.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        try:
            runner, port = await start(build_app(latency_s, slow_latency_s, clock, history_size), host, 0)
        except Exception as exc:  # reported to the caller below
            state["error"] = exc
            ready.set()
            return
        state["port"] = port
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(main(),), name="keymedic-sandbox", daemon=True
    )
    thread.start()
    try:
        if not ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the sandbox did not start within {START_TIMEOUT_S:.0f} s")
        if "error" in state:
            raise RuntimeError(f"the sandbox failed to start: {state['error']}")
        yield f"http://{host}:{state['port']}"
    finally:
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT_S)
        loop.close()
