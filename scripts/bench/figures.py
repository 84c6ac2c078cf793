"""One figure of the benchmark (a row of the table) and how its values and ratio are shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Figure", "ratio", "format_ratio", "format_value"]

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Figure:
    """A named measurement for KeyMedic and the starter bot; `None` where a side has no such figure."""

    name: str
    unit: str
    keymedic: float | None
    starter: float | None = None
    # Which direction is good, so a reader knows whether a ratio above 1 is a regression.
    better: Better = "lower"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """KeyMedic / starter, when both sides have a value and the starter's is not zero."""
        return ratio(self.keymedic, self.starter)

    def as_json(self) -> dict[str, Any]:
        """The figure as JSON, with its ratio."""
        return {
            "name": self.name,
            "unit": self.unit,
            "keymedic": _rounded(self.keymedic),
            "starter": _rounded(self.starter),
            "ratio": _rounded(self.ratio),
            "better": self.better,
            "note": self.note,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def ratio(keymedic: float | None, starter: float | None) -> float | None:
    """KeyMedic / starter, or None when it is undefined (a side missing, or a zero denominator)."""
    if keymedic is None or starter is None or starter == 0:
        return None
    return keymedic / starter


def format_ratio(keymedic: float | None, starter: float | None) -> str:
    """The ratio as `1.23×`; two significant decimals below 10, one above; `—` when undefined."""
    value = ratio(keymedic, starter)
    if value is None:
        return "—"
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def format_value(value: float | None, unit: str) -> str:
    """A value with its unit, with as many decimals as its size deserves; `—` when missing."""
    if value is None:
        return "—"
    if unit == "count":
        return f"{value:.0f}"
    if unit == "×":
        return f"{value:.2f}×"
    magnitude = abs(value)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2
    return f"{value:.{decimals}f} {unit}"
