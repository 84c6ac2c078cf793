"""Conversation locks on the real Redis when a replica dies holding one (rasa_plugins/lock_store.py).

A "dead replica" is a ticket issued and never cleaned up. A message queued behind it less than a poll
interval later: Rasa's own store waits for it forever, KeyMedic's takes it over once the dead ticket expires.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import pytest
import redis
from rasa.core.lock_store import RedisLockStore

from rasa_plugins.lock_store import RequeueingRedisLockStore

pytestmark = pytest.mark.integration

DB = 12
LIFETIME_S = 2.0


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"kmtest{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis(db=DB)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


async def _wait_behind_a_dead_ticket(store: RedisLockStore, dead: RedisLockStore) -> float:
    dead.issue_ticket("conversation", LIFETIME_S)  # the replica holding it is killed: never cleaned up
    await asyncio.sleep(0.2)
    started = time.monotonic()
    async with store.lock("conversation", lock_lifetime=LIFETIME_S, wait_time_in_seconds=1):
        return time.monotonic() - started


async def test_a_message_behind_a_dead_replicas_ticket_goes_on_once_it_expires(prefix: str) -> None:
    dead = RedisLockStore(port=6379, db=DB, key_prefix=prefix)
    store = RequeueingRedisLockStore(port=6379, db=DB, key_prefix=prefix)
    waited = await asyncio.wait_for(_wait_behind_a_dead_ticket(store, dead), timeout=10)
    assert 1.0 <= waited <= LIFETIME_S + 2.5
    assert store.get_lock("conversation") is None  # cleaned up after the turn


async def test_rasas_own_store_waits_forever_there(prefix: str) -> None:
    # The bug the class above exists for; if a Rasa upgrade fixes it, this test says so.
    dead = RedisLockStore(port=6379, db=DB, key_prefix=prefix)
    rasas = RedisLockStore(port=6379, db=DB, key_prefix=prefix)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(_wait_behind_a_dead_ticket(rasas, dead), timeout=3 * LIFETIME_S)


async def test_messages_of_one_conversation_still_take_turns(prefix: str) -> None:
    store = RequeueingRedisLockStore(port=6379, db=DB, key_prefix=prefix)
    inside: list[int] = []
    overlaps = 0

    async def turn(n: int) -> None:
        nonlocal overlaps
        async with store.lock("conversation", lock_lifetime=30, wait_time_in_seconds=0.05):
            overlaps += bool(inside)
            inside.append(n)
            await asyncio.sleep(0.05)
            inside.remove(n)

    await asyncio.gather(*(turn(n) for n in range(5)))
    assert overlaps == 0
