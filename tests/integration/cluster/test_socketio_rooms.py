"""`channels.socketio.share_rooms_through_redis` between two real socket.io servers and the real Redis.

Two servers stand for two Rasa replicas: a widget's socket sits on one, and the other emits to the
conversation's room (a reply, or an agent's message relayed through it). With the hook, the message arrives
through Redis; without it, it is lost, which is what the hook is for.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web

from bot.config import Settings, load_settings
from bot.launcher import free_port
from channels.socketio import share_rooms_through_redis
from tests.integration.cluster.engineio_client import EngineIO

pytestmark = pytest.mark.integration

ROOM = "w-conversation-under-test"


async def _server(settings: Settings | None) -> tuple[Any, web.AppRunner, str]:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    if settings is not None:
        share_rooms_through_redis(sio, settings)

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # As the widget channel does: the socket joins its conversation's room.
        await sio.enter_room(sid, ROOM)

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return sio, runner, f"http://127.0.0.1:{port}"


@pytest.fixture
def settings() -> Settings:
    # Its own pub/sub channel: nothing else on this Redis hears these emits.
    return replace(
        load_settings(),
        socketio_redis_url="redis://127.0.0.1:6379/12",
        redis_namespace=f"kmtest{secrets.token_hex(4)}",
    )


@pytest.fixture
async def runners() -> AsyncIterator[list[tuple[Any, web.AppRunner]]]:
    started: list[tuple[Any, web.AppRunner]] = []
    yield started
    for sio, runner in started:
        await runner.cleanup()
        await sio.shutdown()
        # The Redis manager listens in a background task that outlives the web app; end it and close its
        # connections here, or the test's event loop never finishes closing.
        manager = sio.manager
        listener = getattr(manager, "thread", None)
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        if getattr(manager, "pubsub", None) is not None:
            await manager.pubsub.reset()
        if getattr(manager, "redis", None) is not None:
            await manager.redis.close()
            await manager.redis.connection_pool.disconnect()


async def _delivered(holder_url: str, emitter: Any) -> bool:
    async with aiohttp.ClientSession() as http:
        widget = EngineIO(http, holder_url)
        await widget.open_websocket()
        try:
            await asyncio.sleep(0.5)  # the holder's Redis listener subscribes on its first connection
            await emitter.emit("bot_uttered", {"text": "Hi, Sam from support here."}, room=ROOM)
            try:
                message = await widget.event("bot_uttered", timeout=3.0)
            except asyncio.TimeoutError:
                return False
            return bool(message == {"text": "Hi, Sam from support here."})
        finally:
            await widget.close()


async def test_an_emit_on_one_replica_reaches_a_socket_on_the_other(
    settings: Settings, runners: list[tuple[Any, web.AppRunner]]
) -> None:
    holder, holder_runner, holder_url = await _server(settings)
    emitter, emitter_runner, _ = await _server(settings)
    runners += [(holder, holder_runner), (emitter, emitter_runner)]
    assert await _delivered(holder_url, emitter)


async def test_without_the_shared_rooms_the_message_is_lost(runners: list[tuple[Any, web.AppRunner]]) -> None:
    holder, holder_runner, holder_url = await _server(None)
    emitter, emitter_runner, _ = await _server(None)
    runners += [(holder, holder_runner), (emitter, emitter_runner)]
    assert not await _delivered(holder_url, emitter)


def test_no_redis_url_leaves_the_server_as_it_was() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    manager = sio.manager
    share_rooms_through_redis(sio, replace(load_settings(), socketio_redis_url=""))
    assert sio.manager is manager
