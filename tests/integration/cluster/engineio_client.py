"""A minimal Engine.IO 4 / socket.io 5 client for the cluster tests (see `EngineIO`)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

__all__ = ["EngineIO"]


class EngineIO:
    """Just enough of an Engine.IO 4 / socket.io 5 client to drive both transports through the balancer.

    python-socketio's own async client needs aiohttp >= 3.10 for WebSockets and Rasa pins 3.9, so the
    packets are spoken by hand: `0` open, `40` namespace connect, `42[...]` event, `2`/`3` ping/pong,
    `2probe`/`3probe`/`5` the upgrade.
    """

    def __init__(self, http: aiohttp.ClientSession, base: str, origin: str = "http://widget.test") -> None:
        self.http, self.base, self.headers = http, base, {"Origin": origin}
        self.sid = ""
        self.events: list[tuple[str, Any]] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    def _url(self, transport: str) -> str:
        sid = f"&sid={self.sid}" if self.sid else ""
        return f"{self.base}/socket.io/?EIO=4&transport={transport}{sid}"

    def _take(self, packet: str) -> None:
        if packet.startswith("42"):
            name, data = json.loads(packet[2:])
            self.events.append((name, data))

    async def _poll(self) -> list[str]:
        async with self.http.get(self._url("polling"), headers=self.headers) as response:
            assert response.status == 200, await response.text()
            return (await response.text()).split("\x1e")

    async def open_polling_then_upgrade(self) -> None:
        [opened] = await self._poll()
        assert opened.startswith("0")
        self.sid = json.loads(opened[1:])["sid"]
        async with self.http.post(self._url("polling"), data="40", headers=self.headers) as response:
            assert response.status == 200
        for packet in await self._poll():
            self._take(packet)
        self.ws = await self.http.ws_connect(self._url("websocket"), headers=self.headers)
        await self.ws.send_str("2probe")
        assert await self.ws.receive_str(timeout=10) == "3probe"
        await self.ws.send_str("5")

    async def open_websocket(self) -> None:
        self.ws = await self.http.ws_connect(self._url("websocket"), headers=self.headers)
        opened = await self.ws.receive_str(timeout=10)
        assert opened.startswith("0")
        self.sid = json.loads(opened[1:])["sid"]
        await self.ws.send_str("40")

    async def emit(self, name: str, data: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str("42" + json.dumps([name, data]))

    async def event(self, name: str, timeout: float = 10.0) -> Any:
        assert self.ws is not None
        while True:
            for seen, data in self.events:
                if seen == name:
                    self.events.remove((seen, data))
                    return data
            packet = await self.ws.receive_str(timeout=timeout)
            if packet == "2":
                await self.ws.send_str("3")
            self._take(packet)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
