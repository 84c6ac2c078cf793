"""What the exchanges said "no" to lately, shared by every replica: refused keys and bans.

Why: repeated failed attempts lock a key out (Kraken: `EAPI:Invalid key`, then `EGeneral:Temporary lockout`,
and "each attempt resets the timer"), and ignored rate limits ban the caller's address (Binance 429 → 418,
Bybit's 403) (reference/exchanges.md §0.3). So after an exchange has refused a credential, or told KeyMedic to
back off, no process of the deployment asks it again until that has passed:

- **a refused key**: the exchange said the key is unknown (`key_known` failed) → that API key is not sent
  again, whatever secret comes with it; it refused the secret or passphrase (or anything else about the
  credential) → that exact credential is not sent again. A user who resubmits it gets the remembered
  diagnosis, marked `refused_before_s`, and no request is made. A corrected secret is a new credential and
  may be tried (within the key's attempt budget, `bot.diagnosis.limits`).
- **a ban or back-off**: a ban or a stated wait (Binance 418, Bybit 403, a `Retry-After`) holds the whole
  exchange for the deployment when it is about KeyMedic's address; Kraken's lockout and the per-account
  limits of Bybit and Crypto.com hold that key only.

Entries are named by HMACs under the limiter's server key (`key_fingerprint`), never by the key itself, and
hold only the diagnosis (fixed texts and exchange codes, no secret). With Redis they are shared (`SET … PX`);
without it they live in this process's bounded memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bot.types.credentials import Credentials
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable

__all__ = [
    "SignalStore",
    "MemorySignals",
    "RedisSignals",
    "Refusals",
    "credential_fingerprint",
    "diagnosis_from_dict",
    "KEY_LOCKOUT_CODES",
]

# Refusals are remembered this long: Kraken's lockout lasts about 15 minutes (reference §0.3).
DEFAULT_REFUSAL_TTL_S: Final = 900.0
# A back-off without a stated length (Bybit's 403 ban: "at least 10 minutes").
DEFAULT_BAN_S: Final = 600.0
# Codes that lock out one key rather than KeyMedic's address.
KEY_LOCKOUT_CODES: Final = ("EGeneral:Temporary lockout",)
# Rate limits of one account rather than of KeyMedic's address: Bybit's per-UID 10006
# (docs/exchanges/bybit.md), Crypto.com's per-key 42901 (reference §10). Binance's 429/418 (by IP), Bybit's
# 403 and 10018 and Bitfinex's per-IP ERR_RATE_LIMIT hold the whole exchange.
PER_ACCOUNT_CODES: Final = ("10006", "42901")


class SignalStore(Protocol):
    def put(self, name: str, value: str, ttl_s: float) -> None: ...

    def get(self, name: str) -> str | None: ...

    def reset(self) -> None: ...


class MemorySignals:
    """Entries with an expiry, at most `max_entries` (the oldest go first)."""

    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def put(self, name: str, value: str, ttl_s: float) -> None:
        with self._lock:
            self._entries[name] = (self._clock() + ttl_s, value)
            self._entries.move_to_end(name)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def get(self, name: str) -> str | None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[name]
                return None
            return entry[1]

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()


class RedisSignals:
    """Entries in Redis under `prefix`, shared by every process of the deployment."""

    def __init__(self, client: Any, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix.rstrip(":") + ":"

    def put(self, name: str, value: str, ttl_s: float) -> None:
        self._client.set(self._prefix + name, value.encode(), px=max(1, int(ttl_s * 1000)))

    def get(self, name: str) -> str | None:
        raw = self._client.get(self._prefix + name)
        return None if raw is None else bytes(raw).decode()

    def reset(self) -> None:
        for key in self._client.scan_iter(match=self._prefix + "*", count=500):
            self._client.delete(key)


def credential_fingerprint(server_key: bytes, exchange: str, credentials: Credentials) -> str:
    """An HMAC of the whole credential (key, secret, passphrase): equal only for the same paste."""
    parts = [
        exchange,
        credentials.api_key,
        credentials.api_secret.reveal(),
        credentials.passphrase.reveal() if credentials.passphrase else "",
        credentials.key_version or "",
    ]
    return hmac.new(server_key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def diagnosis_from_dict(data: dict[str, Any], *, refused_before_s: float | None = None) -> Diagnosis:
    """A stored diagnosis (`Diagnosis.to_dict()`) back as a `Diagnosis`."""
    items = tuple(
        ItemOutcome(
            Item(o["item"]),
            Status(o["status"]),
            fix=o.get("fix"),
            raw_code=o.get("raw_code"),
            detail=o.get("detail"),
        )
        for o in data["items"]
    )
    unavailable = None
    if data.get("unavailable"):
        u = data["unavailable"]
        unavailable = Unavailable(u["kind"], u["message"], u.get("retry_after_s"), u.get("raw_code"))
    return Diagnosis(data["exchange"], items, unavailable, 0.0, refused_before_s=refused_before_s)


@dataclass
class Refusals:
    """Remembers refusals and bans in `store`; names entries with HMACs under `server_key`."""

    store: SignalStore
    server_key: bytes
    refusal_ttl_s: float = DEFAULT_REFUSAL_TTL_S
    clock: Callable[[], float] = time.time

    def _key_name(self, exchange: str, api_key: str) -> str:
        digest = hmac.new(self.server_key, f"{exchange}\0{api_key}".encode(), hashlib.sha256).hexdigest()
        return digest[:32]

    def check(self, exchange: str, credentials: Credentials) -> Diagnosis | None:
        """What to answer without calling the exchange (a remembered refusal or an active ban), or None."""
        now = self.clock()
        key_name = self._key_name(exchange, credentials.api_key)
        for ban_name in (f"ban:{exchange}", f"ban:{exchange}:{key_name}"):
            raw = self.store.get(ban_name)
            if raw is not None:
                ban = json.loads(raw)
                wait = max(1.0, float(ban["until"]) - now)
                unavailable = Unavailable(
                    "rate_limited",
                    f"{ban['message']}; KeyMedic waits before asking again so the key isn't locked out",
                    wait,
                    ban.get("raw_code"),
                )
                detail = f"Couldn't be checked: {unavailable.message}."
                items = tuple(ItemOutcome(item, Status.UNKNOWN, detail=detail) for item in Item)
                return Diagnosis(exchange, items, unavailable, 0.0)
        raw = self.store.get(f"refused:{key_name}")
        if raw is None:
            return None
        refusal = json.loads(raw)
        same = refusal["credential"] == credential_fingerprint(self.server_key, exchange, credentials)
        if not (refusal["key_refused"] or same):
            return None
        return diagnosis_from_dict(
            refusal["diagnosis"], refused_before_s=max(0.0, now - float(refusal["at"]))
        )

    def record(self, exchange: str, credentials: Credentials, diagnosis: Diagnosis, refused: bool) -> None:
        """Remember what this diagnosis says KeyMedic must not repeat."""
        now = self.clock()
        key_name = self._key_name(exchange, credentials.api_key)
        gone = diagnosis.unavailable
        if gone is not None and gone.kind == "rate_limited" and _is_ban(gone):
            until = now + (gone.retry_after_s or DEFAULT_BAN_S)
            code = gone.raw_code or ""
            per_key = code.startswith(KEY_LOCKOUT_CODES) or code in PER_ACCOUNT_CODES
            name = f"ban:{exchange}:{key_name}" if per_key else f"ban:{exchange}"
            value = {"until": until, "message": gone.message, "raw_code": gone.raw_code}
            self.store.put(name, json.dumps(value), max(1.0, until - now))
        if refused:
            value = {
                "at": now,
                "credential": credential_fingerprint(self.server_key, exchange, credentials),
                "key_refused": diagnosis.outcome(Item.KEY_KNOWN).status is Status.FAIL,
                "diagnosis": diagnosis.to_dict(),
            }
            self.store.put(f"refused:{key_name}", json.dumps(value), self.refusal_ttl_s)


def _is_ban(unavailable: Unavailable) -> bool:
    # A stated wait (Retry-After, Bybit's reset time, Kraken's lockout) or a ban status: respected by every
    # replica. A plain 429 without a wait is left to the per-call retry policy.
    code = unavailable.raw_code or ""
    return (
        unavailable.retry_after_s is not None
        or code in ("HTTP 418", "HTTP 403")
        or code.startswith(KEY_LOCKOUT_CODES)
    )
