"""A clean rate limiter and no exchange URL overrides for every diagnosis test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.diagnosis.service import reset_rate_limits
from bot.exchange_ids import EXCHANGE_IDS


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for exchange in EXCHANGE_IDS:
        monkeypatch.delenv(f"KEYMEDIC_{exchange.upper()}_URL", raising=False)
    monkeypatch.delenv("KEYMEDIC_DIAGNOSIS_DEADLINE", raising=False)
    reset_rate_limits()
    yield
    reset_rate_limits()
