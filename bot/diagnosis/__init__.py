"""Key diagnosis: test a pasted exchange API key live and say which checklist item fails, with the fix.

    from bot.diagnosis import Credentials, diagnose
    diagnosis = await diagnose("kraken", Credentials(api_key, Secret(api_secret)), user_id="u1")

`diagnose` loads on first use: the exchange clients import this package's model, and the action server
imports this package when it starts, so importing it stays cheap and free of cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.diagnosis.errors import DiagnosisError, DiagnosisRateLimited, UnsupportedExchange
from bot.diagnosis.model import Credentials, Diagnosis, Item, ItemOutcome, Status, Unavailable

if TYPE_CHECKING:
    from bot.diagnosis.service import LIVE_EXCHANGES, diagnose

__all__ = [
    "diagnose",
    "LIVE_EXCHANGES",
    "Credentials",
    "Diagnosis",
    "Item",
    "ItemOutcome",
    "Status",
    "Unavailable",
    "DiagnosisError",
    "DiagnosisRateLimited",
    "UnsupportedExchange",
]


def __getattr__(name: str) -> Any:
    if name in ("diagnose", "LIVE_EXCHANGES"):
        from bot.diagnosis import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
