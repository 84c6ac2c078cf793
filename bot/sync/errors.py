"""Why a history read stopped, in a form later steps can recognise from the stored sync run.

`KeyRejected` is what a history adapter raises when the exchange refused the wallet's key halfway through a
sync (revoked, deleted, secret changed, permission removed). It is never retried (exchanges lock keys out for
repeated bad attempts, reference/exchanges.md §0.3). The runner stores it on the run as `KeyRejected:
<exchange id> rejected the API key [<raw code>]: <the exchange's reason>`; `key_rejection(run.error)` reads
the exchange and raw code back, so a hand-off or outreach can tell "the key needs replacing" apart from "the
exchange was down"."""

from __future__ import annotations

import re
from typing import Final

from bot.sync.source import HistoryError

__all__ = ["KeyRejected", "key_rejection"]

_STORED: Final = re.compile(
    r"^KeyRejected: (?P<exchange>[a-z0-9_]+) rejected the API key \[(?P<code>[^\]]*)\]"
)


class KeyRejected(HistoryError):
    """The exchange refused the wallet's credential during a sync. `raw_code` is the exchange's own code."""

    def __init__(self, exchange: str, raw_code: str, reason: str) -> None:
        super().__init__(f"{exchange} rejected the API key [{raw_code}]: {reason}")
        self.exchange = exchange
        self.raw_code = raw_code
        self.reason = reason


def key_rejection(error: str | None) -> tuple[str, str] | None:
    """`(exchange id, raw code)` when a sync run's stored `error` says the exchange refused the key."""
    if not error:
        return None
    found = _STORED.match(error)
    return (found["exchange"], found["code"]) if found else None
