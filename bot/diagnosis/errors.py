"""Why `diagnose()` refused to run. A diagnosis that ran always returns a `Diagnosis`, even when the exchange
was down; these are raised only when KeyMedic will not ask the exchange at all.

    DiagnosisError
    ├── UnsupportedExchange    no live client for this exchange (the bot gives the manual checklist)
    └── DiagnosisRateLimited   too many diagnoses for this user/key lately (`retry_after_s` to wait)
"""

from __future__ import annotations

__all__ = ["DiagnosisError", "UnsupportedExchange", "DiagnosisRateLimited"]


class DiagnosisError(Exception):
    """Root of the errors `diagnose()` raises before contacting an exchange."""


class UnsupportedExchange(DiagnosisError):
    """KeyMedic has no live client for this exchange; the bot falls back to guidance and the checklist."""

    def __init__(self, exchange: str) -> None:
        super().__init__(
            f"KeyMedic cannot test {exchange} keys live yet; go through the checklist for it instead"
        )
        self.exchange = exchange


class DiagnosisRateLimited(DiagnosisError):
    """Too many diagnoses lately. KeyMedic must be no oracle for stolen keys, and repeated failed attempts get
    a key locked out on some exchanges (reference/exchanges.md §0.3)."""

    def __init__(self, exchange: str, retry_after_s: float) -> None:
        wait = max(1, round(retry_after_s))
        super().__init__(
            f"Too many key tests for {exchange} in a short time; please wait {wait} s before testing again"
        )
        self.exchange = exchange
        self.retry_after_s = float(wait)
