"""One diagnosis of a key at a time, deployment-wide: the others wait for it and take its outcome.

Why: the key budget (`bot.diagnosis.limits`) and the refusal memory (`bot.diagnosis.refusals`) stop a key
from being sent again once the exchange has refused it, but diagnoses that start together (a double-submitted
form, two tabs, two action servers) each pass the budget before the first refusal is remembered, and Kraken
locks a key out on its second failed attempt (reference/exchanges.md §0.3). So a diagnosis first takes the
key's flight lock, named by the key's fingerprint (an HMAC of the exchange and API key, never the key):

- the holder tests the key and publishes its outcome, named by the credential's fingerprint (key, secret and
  passphrase together), then releases the lock;
- a diagnosis that found the lock held waits for it (bounded), then takes the holder's outcome when it tested
  the very same credential, and otherwise goes on under the lock itself — where the refusal memory answers a
  refused key without a request, and a corrected secret is tested (within the budget).

An outcome is only given to a diagnosis that waited for the flight that published it (the holder's token is
in both), so a resubmission after the fact is tested afresh. With Redis the lock is `SET NX PX` with a random
token and released only by its owner (compare-and-delete in one script); a holder that dies frees it when
its TTL runs out, which is the diagnosis deadline plus a margin. Without Redis the same happens in this
process's memory. Lock values are random tokens and outcomes are diagnoses (fixed texts and exchange codes):
no secret is ever stored.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from bot.diagnosis.refusals import MemorySignals, RedisSignals, diagnosis_from_dict
from bot.types.diagnosis import Diagnosis

__all__ = ["FlightStore", "MemoryFlights", "RedisFlights", "Ticket", "published_outcome", "outcome_value"]

# How long a published outcome is kept for the diagnoses that waited for it (they read it as soon as they
# get the lock, one after the other).
OUTCOME_TTL_S: Final = 30.0


class FlightStore(Protocol):
    def try_lock(self, name: str, token: str, ttl_s: float) -> str | None:
        """Take the lock `name` for `token` and return None, or return the holder's token (nothing taken)."""
        ...

    def unlock(self, name: str, token: str) -> None:
        """Release `name` if `token` still holds it (a lock whose TTL ran out may be someone else's now)."""
        ...

    def put(self, name: str, value: str, ttl_s: float) -> None: ...

    def get(self, name: str) -> str | None: ...

    def reset(self) -> None: ...


class MemoryFlights(MemorySignals):
    """Locks and outcomes of one process, with expiries, at most `max_entries` outcomes (the outcomes are
    the refusal memory's expiring entries; the locks are added here)."""

    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max_entries=max_entries, clock=clock)
        self._locks: dict[str, tuple[float, str]] = {}

    def try_lock(self, name: str, token: str, ttl_s: float) -> str | None:
        now = self._clock()
        with self._lock:
            held = self._locks.get(name)
            if held is not None and held[0] > now:
                return held[1]
            self._locks[name] = (now + ttl_s, token)
            return None

    def unlock(self, name: str, token: str) -> None:
        with self._lock:
            held = self._locks.get(name)
            if held is not None and held[1] == token:
                del self._locks[name]

    def reset(self) -> None:
        with self._lock:
            self._locks.clear()
        super().reset()


# KEYS[1]: the lock; ARGV[1]: the token that took it. Deletes it only if that token still holds it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisFlights(RedisSignals):
    """Locks and outcomes in Redis under `prefix`, shared by every process of the deployment."""

    def __init__(self, client: Any, *, prefix: str) -> None:
        super().__init__(client, prefix=prefix)
        self._unlock = client.register_script(_UNLOCK)

    def try_lock(self, name: str, token: str, ttl_s: float) -> str | None:
        key = self._prefix + name
        px = max(1, int(ttl_s * 1000))
        if self._client.set(key, token.encode(), nx=True, px=px):
            return None
        holder = self._client.get(key)
        # Released between the two calls: nobody holds it, so try again at once.
        return self.try_lock(name, token, ttl_s) if holder is None else bytes(holder).decode()

    def unlock(self, name: str, token: str) -> None:
        self._unlock(keys=[self._prefix + name], args=[token.encode()])


@dataclass
class Ticket:
    """One diagnosis's place in its key's flight: its own token, and the tokens of the flights it waited for
    (whose outcomes it may take)."""

    lock_name: str
    outcome_name: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    waited_for: set[str] = field(default_factory=set)


def outcome_value(token: str, diagnosis: Diagnosis) -> str:
    """What the holder publishes: its token and its diagnosis (no secret in either)."""
    return json.dumps({"token": token, "diagnosis": diagnosis.to_dict()})


def published_outcome(ticket: Ticket, raw: str | None) -> Diagnosis | None:
    """The outcome of a flight this ticket waited for, or None (none published, or published by a flight
    that ended before this diagnosis began: that is a resubmission, tested afresh)."""
    if raw is None or not ticket.waited_for:
        return None
    value = json.loads(raw)
    if value["token"] not in ticket.waited_for:
        return None
    return diagnosis_from_dict(value["diagnosis"])
