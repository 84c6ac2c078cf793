"""What a key diagnosis says: one outcome per checklist item, or that the exchange could not be asked.

The items follow the checklist of the help article (`reference/update-api-key-article.txt`), in its order.
Nothing here holds a secret: `Diagnosis.to_dict()` is safe to log, store on a ticket and print.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

__all__ = [
    "Item",
    "Status",
    "ItemOutcome",
    "UnavailableKind",
    "Unavailable",
    "Diagnosis",
]


class Item(str, Enum):
    """A checklist item, in the article's order."""

    FORMAT = "format"
    KEY_KNOWN = "key_known"
    SECRET_OK = "secret_ok"
    PASSPHRASE_OK = "passphrase_ok"
    ACTIVATED = "activated"
    READ_PERMISSION = "read_permission"
    NO_TRADE_OR_WITHDRAW = "no_trade_or_withdraw"
    NO_IP_RESTRICTION = "no_ip_restriction"
    HAS_ACTIVITY = "has_activity"


class Status(str, Enum):
    """How an item came out. `UNKNOWN` means the exchange's answer could not settle it (ask the user)."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class ItemOutcome:
    """One checklist item's result. `fix` is what the user should do (set when it fails, or for guidance);
    `raw_code` is the exchange's own error code or field, for support; `detail` explains an unknown or a pass
    with a caveat."""

    item: Item
    status: Status
    fix: str | None = None
    raw_code: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "item": self.item.value,
            "status": self.status.value,
            "fix": self.fix,
            "raw_code": self.raw_code,
            "detail": self.detail,
        }


UnavailableKind = Literal["unreachable", "rate_limited", "server_error", "clock_skew", "timeout"]


@dataclass(frozen=True)
class Unavailable:
    """The exchange could not give an answer about the key. Never a verdict on the key itself."""

    kind: UnavailableKind
    message: str
    retry_after_s: float | None = None
    raw_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "retry_after_s": self.retry_after_s,
            "raw_code": self.raw_code,
        }


@dataclass(frozen=True)
class Diagnosis:
    """The result of testing one key on one exchange: exactly one outcome per `Item`, in `Item` order."""

    exchange: str
    items: tuple[ItemOutcome, ...]
    unavailable: Unavailable | None = None
    elapsed_s: float = 0.0
    # Set when this is a remembered refusal (`bot.diagnosis.refusals`): the exchange refused this credential
    # this many seconds ago, and KeyMedic did not send it again.
    refused_before_s: float | None = None

    def __post_init__(self) -> None:
        if tuple(o.item for o in self.items) != tuple(Item):
            raise ValueError("a Diagnosis holds exactly one outcome per Item, in Item order")

    def outcome(self, item: Item) -> ItemOutcome:
        """The outcome of one item."""
        return self.items[list(Item).index(item)]

    def failing(self) -> tuple[ItemOutcome, ...]:
        """Items that failed: each has a fix the user can act on."""
        return tuple(o for o in self.items if o.status is Status.FAIL)

    def unknown(self) -> tuple[ItemOutcome, ...]:
        """Items the live test could not settle: the checklist asks the user about these."""
        return tuple(o for o in self.items if o.status is Status.UNKNOWN)

    @property
    def all_passed(self) -> bool:
        """Every item passed (or does not apply) and the exchange answered."""
        return self.unavailable is None and all(
            o.status in (Status.PASS, Status.NOT_APPLICABLE) for o in self.items
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict. Holds no secret (outcomes carry only fixed texts and exchange codes)."""
        data: dict[str, Any] = {
            "exchange": self.exchange,
            "all_passed": self.all_passed,
            "items": [o.to_dict() for o in self.items],
            "unavailable": self.unavailable.to_dict() if self.unavailable else None,
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if self.refused_before_s is not None:
            data["refused_before_s"] = round(self.refused_before_s)
        return data
