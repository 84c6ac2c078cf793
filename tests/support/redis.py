"""The local Redis the tests share (127.0.0.1:6379, db 0): each test works in a namespace of its own, a fresh
key prefix whose keys are deleted when it ends, so tests never see each other's keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["REDIS_URL", "redis_or_skip", "redis_namespace"]

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> Any:
    """A client of the local Redis; skips the test when the package or the server is missing (a unit test
    that can also run on Redis)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        pytest.skip("no Redis at 127.0.0.1:6379")
    return client


@contextmanager
def redis_namespace() -> Iterator[str]:
    """A fresh key prefix (`kmtest<hex>`); every key under it is deleted when the block ends."""
    import redis

    name = f"kmtest{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            for key in client.scan_iter(match=f"{name}:*"):
                client.delete(key)
        finally:
            client.close()
