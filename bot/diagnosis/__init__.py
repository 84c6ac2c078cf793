"""Key diagnosis: test a pasted exchange API key live and say which checklist item fails, with the fix.

    from bot.diagnosis import diagnose
    from bot.types.credentials import Credentials
    diagnosis = await diagnose("kraken", Credentials(api_key, Secret(api_secret)), user_id="u1")

The types a diagnosis speaks (`Credentials`, `Diagnosis`, `Item`, `Status`, ...) live in `bot.types`, below
the exchange clients that fill them in. `diagnose` loads on first use: the action server imports this package
when it starts, and the service pulls in httpx and the exchange clients, so importing it stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.diagnosis.errors import DiagnosisError, DiagnosisRateLimited, UnsupportedExchange

if TYPE_CHECKING:
    from bot.diagnosis.service import LIVE_EXCHANGES, diagnose

__all__ = [
    "diagnose",
    "LIVE_EXCHANGES",
    "DiagnosisError",
    "DiagnosisRateLimited",
    "UnsupportedExchange",
]


def __getattr__(name: str) -> Any:
    if name in ("diagnose", "LIVE_EXCHANGES"):
        from bot.diagnosis import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
