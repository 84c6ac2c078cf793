"""What HAProxy adds to a request: the same small request, direct and through HAProxy (docs/bench.md).

    .venv/bin/python -m scripts.haproxy_latency [requests]

An aiohttp server answering a small JSON body stands in for a replica, so the figure is HAProxy's own cost
(one more hop on the loopback, its parsing and its logging), not Rasa's. The client keeps connections alive
(httpx's pool) where the server lets it; HAProxy closes each after its response (`option httpclose`).
Prints the median, p95 and p99 of each path in ms.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from aiohttp import web

from bot.cluster.haproxy import Frontend, Server, command, render


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _serve(port: int) -> web.AppRunner:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response([{"recipient_id": "u", "text": "hello"}])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _timings(url: str, requests: int) -> list[float]:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(50):  # warm up: connections open, code paths hot
            (await client.post(url, json={"sender": "u", "message": "hi"})).raise_for_status()
        taken = []
        for _ in range(requests):
            start = time.perf_counter()
            (await client.post(url, json={"sender": "u", "message": "hi"})).raise_for_status()
            taken.append((time.perf_counter() - start) * 1000)
    return taken


def _summary(taken: list[float]) -> str:
    cuts = statistics.quantiles(taken, n=100)
    return f"median {statistics.median(taken):.3f} ms, p95 {cuts[94]:.3f} ms, p99 {cuts[98]:.3f} ms"


async def main(requests: int) -> None:
    upstream, front = free_port(), free_port()
    runner = await _serve(upstream)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "haproxy.cfg"
        config.write_text(
            render(Frontend("rasa", f"127.0.0.1:{front}", (Server("rasa-1", "127.0.0.1", upstream),)))
        )
        process = subprocess.Popen(command(config), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                try:
                    if (
                        httpx.get(f"http://127.0.0.1:{front}/health/ready", trust_env=False).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
            path = "/webhooks/rest/webhook"
            # Alternate the two paths in rounds, so a busy moment on the shared machine hits both alike.
            direct: list[float] = []
            proxied: list[float] = []
            for _ in range(5):
                direct += await _timings(f"http://127.0.0.1:{upstream}{path}", requests // 5)
                proxied += await _timings(f"http://127.0.0.1:{front}{path}", requests // 5)
        finally:
            process.terminate()
            process.wait(timeout=10)
    await runner.cleanup()
    print(f"direct:        {_summary(direct)}")
    print(f"through HAProxy: {_summary(proxied)}")
    added = statistics.median(proxied) - statistics.median(direct)
    print(f"added (median): {added:.3f} ms over {len(direct)} requests each")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
