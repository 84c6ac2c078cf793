"""The real sandbox on a free port, once for the folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sandbox.server import serve_in_thread

SLOW_LATENCY_S = 0.3


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    with serve_in_thread(latency_s=0.0, slow_latency_s=SLOW_LATENCY_S) as url:
        yield url
