"""Waiting for something to be so, with a deadline: a test polls a condition it can name, never sleeps a fixed
time and hopes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["eventually"]

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, *, timeout: float = 30.0, interval: float = 0.2) -> T:
    """`check()`'s first truthy answer, asked every `interval` seconds; fails the test, naming `what`, when
    none came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() >= deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
