"""Serving an aiohttp application in a test: on a free port of 127.0.0.1, on an event loop in a thread of its
own, for as long as a `with` block lasts. KeyMedic's web app is started as production starts it
(`bot.web.app.start`, with its access log); the tests' fakes (Rasa, a helpdesk's webhook) on a plain runner
that gives up on a hanging connection after a second when the block ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import pytest
from aiohttp import web

from bot.web.app import start as start_web_app

__all__ = ["Served", "serve", "serve_web_app"]

START_TIMEOUT_S = 10.0

Starter = Callable[[web.Application, str, int], Awaitable[tuple[web.AppRunner, int]]]


class Served(NamedTuple):
    url: str
    loop: asyncio.AbstractEventLoop


async def _plain_start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, shutdown_timeout=1.0).start()
    return runner, int(runner.addresses[0][1])


@contextmanager
def serve(app: web.Application, *, start: Starter = _plain_start) -> Iterator[Served]:
    """Run `app` until the block ends; yields its base URL and its loop once it accepts connections, or
    fails the test when it does not start."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        try:
            runner, port = await start(app, "127.0.0.1", 0)
        except Exception as exc:  # reported below
            state["error"] = exc
            ready.set()
            return
        stop = asyncio.Event()
        state["port"], state["stop"] = port, stop
        ready.set()
        await stop.wait()
        await runner.cleanup()
        await loop.shutdown_default_executor()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="test-server", daemon=True)
    thread.start()
    try:
        if not ready.wait(START_TIMEOUT_S):
            pytest.fail("the server did not start")
        if "error" in state:
            pytest.fail(f"the server failed to start: {state['error']}")
        yield Served(f"http://127.0.0.1:{state['port']}", loop)
    finally:
        stop = state.get("stop")
        if isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT_S)
        loop.close()


@contextmanager
def serve_web_app(app: web.Application) -> Iterator[str]:
    """KeyMedic's web app, started as production starts it; yields its base URL."""
    with serve(app, start=start_web_app) as served:
        yield served.url
