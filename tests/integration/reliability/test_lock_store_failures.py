"""The cluster's Redis lock store when Redis restarts or hangs (issue 19): a turn meets an error within
seconds (which the channels show as "not sent, send it again"), never a wait without end, and the lock works
again once Redis is back. A redis-server of this test's own on a free port: the machine's shared Redis is
never touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from rasa.core.lock_store import LockError

from bot.config import PROJECT_ROOT
from bot.launcher import free_port
from rasa_plugins.lock_store import RequeueingRedisLockStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


class OwnRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir",
             str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
        server.kill()


def _timeout_s() -> float:
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.cluster.yml").read_text())
    return float(endpoints["lock_store"]["socket_timeout"])


async def _take_lock(store: RequeueingRedisLockStore) -> None:
    async with store.lock("conversation-1"):
        pass


def test_the_cluster_waits_seconds_not_ten_for_a_hung_redis() -> None:
    assert _timeout_s() <= 2


async def test_a_redis_restart_fails_turns_at_once_then_the_lock_works_again(own_redis: OwnRedis) -> None:
    store = RequeueingRedisLockStore(host="127.0.0.1", port=own_redis.port, socket_timeout=_timeout_s())
    await _take_lock(store)
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(LockError, match="Connection refused"):
        await _take_lock(store)
    assert time.monotonic() - started < 1.0
    own_redis.start()
    await _take_lock(store)


async def test_a_hung_redis_fails_the_turn_within_the_socket_timeout(own_redis: OwnRedis) -> None:
    timeout = _timeout_s()
    store = RequeueingRedisLockStore(host="127.0.0.1", port=own_redis.port, socket_timeout=timeout)
    await _take_lock(store)
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        with pytest.raises(LockError, match="Timeout"):
            await _take_lock(store)
        assert time.monotonic() - started < timeout + 1.0
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    await _take_lock(store)
