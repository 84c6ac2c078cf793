"""A wallet's history as an exchange reports it, and the `HistorySource` protocol that reads it.

The exchange adapters (`bot/exchanges/*_history.py`) implement `HistorySource`; the resync (`bot/sync/`)
consumes it and registers the adapters. Both speak these types, so they live below both.

Errors (each message is stored on the sync run, so it never holds a secret; the runner also masks the
wallet's own secrets in it, as a second line of defence):

    HistoryError          the history could not be read completely
    └── KeyRejected       the exchange refused the wallet's key halfway through (never retried)

`KeyRejected` is stored on the run as `KeyRejected: <exchange id> rejected the API key [<raw code>]: <the
exchange's reason>`; `key_rejection(run.error)` reads the exchange and raw code back, so a hand-off or
outreach can tell "the key needs replacing" apart from "the exchange was down". Exchanges lock keys out for
repeated bad attempts (reference/exchanges.md §0.3), hence no retry.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from bot.types.credentials import Credentials

__all__ = [
    "SourceTransaction",
    "WalletRef",
    "HistorySource",
    "HistorySourceFactory",
    "HistoryError",
    "KeyRejected",
    "key_rejection",
]


class HistoryError(Exception):
    """Root of the errors a history source raises. Its message is stored on the sync run, so it must never
    contain a secret (the runner also masks the wallet's own secrets in it, as a second line of defence)."""


class KeyRejected(HistoryError):
    """The exchange refused the wallet's credential during a sync. `raw_code` is the exchange's own code."""

    def __init__(self, exchange: str, raw_code: str, reason: str) -> None:
        super().__init__(f"{exchange} rejected the API key [{raw_code}]: {reason}")
        self.exchange = exchange
        self.raw_code = raw_code
        self.reason = reason


_STORED: Final = re.compile(
    r"^KeyRejected: (?P<exchange>[a-z0-9_]+) rejected the API key \[(?P<code>[^\]]*)\]"
)


def key_rejection(error: str | None) -> tuple[str, str] | None:
    """`(exchange id, raw code)` when a sync run's stored `error` says the exchange refused the key."""
    if not error:
        return None
    found = _STORED.match(error)
    return (found["exchange"], found["code"]) if found else None


@dataclass(frozen=True)
class SourceTransaction:
    """One transaction as the exchange reports it; `exchange_tx_id` (its own id there) is the merge key."""

    exchange_tx_id: str
    kind: str
    asset: str
    amount: Decimal
    occurred_at: datetime
    fee: Decimal | None = None
    fee_asset: str | None = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WalletRef:
    """What a source needs to know about the wallet it reads."""

    wallet_id: int
    exchange: str
    account_label: str


class HistorySource(Protocol):
    """Reads a wallet's full transaction history from its exchange."""

    def pages(
        self, wallet: WalletRef, credentials: Credentials
    ) -> AsyncIterator[Sequence[SourceTransaction]]:
        """Yield the history one page at a time (any order; the same id twice means the later one wins).
        Raise a `HistoryError` (or let a client error through) when it cannot be read completely: a partial
        history is never applied."""
        ...


HistorySourceFactory = Callable[[str], HistorySource]
