"""Scripted conversations over Rasa's REST channel: concurrent levels and one long conversation.

Each conversation sends its bot's script in order and waits for every reply before the next message, like a
person in a chat. Latency is the wall time of one `POST /webhooks/rest/webhook` as the client sees it. A turn
counts as an error (and adds no latency sample) when it does not answer 200 with a JSON list in time.
Requests go to the URL given, which the caller builds from 127.0.0.1; loops are bounded by a count and by a
deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from scripts.bench.plan import Level
from scripts.bench.wording import Wording

__all__ = ["PhaseResult", "run_level", "run_long_conversation", "transcript"]

WEBHOOK = "/webhooks/rest/webhook"


@dataclass
class PhaseResult:
    """The turns of one phase: latency samples of the good turns, the count of failed ones, the wall time."""

    latencies_s: list[float]
    errors: int
    wall_s: float
    truncated: bool  # the deadline stopped the phase before it sent everything it planned

    @property
    def turns(self) -> int:
        return len(self.latencies_s) + self.errors

    @property
    def throughput(self) -> float | None:
        """Answered turns per second of wall time."""
        return len(self.latencies_s) / self.wall_s if self.wall_s > 0 else None


def _client(concurrency: int, base_url: str) -> httpx.AsyncClient:
    # trust_env=False: a proxy from the environment must never see (or slow down) traffic to 127.0.0.1.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, limits=limits, trust_env=False)


async def _turn(client: httpx.AsyncClient, sender: str, message: str, timeout_s: float) -> float | None:
    """Send one message and wait for the replies; the latency in seconds, or None when the turn failed."""
    started = time.perf_counter()
    try:
        response = await client.post(WEBHOOK, json={"sender": sender, "message": message}, timeout=timeout_s)
        elapsed = time.perf_counter() - started
        ok = response.status_code == 200 and isinstance(response.json(), list)
    except (httpx.HTTPError, ValueError):
        return None
    return elapsed if ok else None


async def run_level(
    base_url: str,
    wording: Wording,
    level: Level,
    *,
    tag: str,
    deadline_s: float,
    timeout_s: float,
) -> PhaseResult:
    """`level.concurrency` conversation slots at once, each running `level.conversations` conversations."""
    run_id = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    errors = 0
    truncated = False
    deadline = time.monotonic() + deadline_s

    async def slot(client: httpx.AsyncClient, index: int) -> None:
        nonlocal errors, truncated
        for conversation in range(level.conversations):
            sender = f"bench-{tag}-{run_id}-{index}-{conversation}"
            for message in wording.next_script():
                if time.monotonic() > deadline:
                    truncated = True
                    return
                latency = await _turn(client, sender, message, timeout_s)
                if latency is None:
                    errors += 1
                else:
                    latencies.append(latency)

    async with _client(level.concurrency, base_url) as client:
        started = time.perf_counter()
        await asyncio.gather(*(slot(client, index) for index in range(level.concurrency)))
        wall = time.perf_counter() - started
    return PhaseResult(latencies_s=latencies, errors=errors, wall_s=wall, truncated=truncated)


async def run_long_conversation(
    base_url: str, wording: Wording, turns: int, *, tag: str, deadline_s: float, timeout_s: float
) -> list[float | None]:
    """One conversation of `turns` turns (the script repeated, each time in a new conversation's words); the
    latency of each turn, None if it failed.

    The list is shorter than `turns` when the deadline stopped it.
    """
    sender = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + deadline_s
    latencies: list[float | None] = []
    async with _client(1, base_url) as client:
        for message in itertools.islice(wording.stream(), turns):
            if time.monotonic() > deadline:
                break
            latencies.append(await _turn(client, sender, message, timeout_s))
    return latencies


def _shown(reply: dict[str, Any]) -> Any:
    """A reply's text, or the reply without its recipient (an image, buttons, a custom payload)."""
    if set(reply) <= {"recipient_id", "text"} and "text" in reply:
        return reply["text"]
    return {key: value for key, value in reply.items() if key != "recipient_id"}


async def transcript(
    base_url: str, script: Sequence[str], *, tag: str, timeout_s: float
) -> list[dict[str, Any]]:
    """One scripted conversation with the bot's replies, so a reader can check what the load exercised."""
    sender = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    turns: list[dict[str, Any]] = []
    async with _client(1, base_url) as client:
        for message in script:
            try:
                response = await client.post(
                    WEBHOOK, json={"sender": sender, "message": message}, timeout=timeout_s
                )
                replies = response.json() if response.status_code == 200 else []
            except (httpx.HTTPError, ValueError):
                replies = []
            shown = [_shown(reply) for reply in replies if isinstance(reply, dict)]
            turns.append({"user": message, "bot": shown})
    return turns
