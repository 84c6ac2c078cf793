"""Which limits a live diagnosis is held to, and where their windows are kept (`bot.diagnosis.ratelimit`).

Three windows per diagnosis, all checked before the exchange is called and recorded only when all allow it:

- the KeyMedic user on this exchange (`KEYMEDIC_DIAGNOSIS_RATE_LIMIT` per `KEYMEDIC_DIAGNOSIS_RATE_WINDOW`);
- the user over every exchange (`KEYMEDIC_DIAGNOSIS_USER_LIMIT`, same window);
- the exchange key, whoever submits it: its lockout-safe budget (`KEYMEDIC_DIAGNOSIS_KEY_LIMIT` per
  `KEYMEDIC_DIAGNOSIS_KEY_WINDOW`), named by an HMAC under a server key.

The user is the KeyMedic user (`SupportDesk` passes `user:<id>`), not the conversation: a new Slack thread or
widget session does not start the count afresh.

With `KEYMEDIC_REDIS_URL` the windows are in Redis under `<KEYMEDIC_REDIS_NAMESPACE>:diagnosis-limit:`, and
the server key is derived from the encryption keys every replica shares (rotating them starts the key budgets
afresh, which is harmless: they last minutes). Without Redis they are in this process's bounded memory, under
a random server key. When Redis cannot be reached the process falls back to its memory store, so the limits
still hold per process rather than not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from bot.config import Settings
from bot.diagnosis.flight import (
    OUTCOME_TTL_S,
    FlightStore,
    MemoryFlights,
    RedisFlights,
    Ticket,
    outcome_value,
    published_outcome,
)
from bot.diagnosis.ratelimit import LimitStore, MemoryStore, RedisStore, Window, key_fingerprint
from bot.diagnosis.refusals import MemorySignals, RedisSignals, Refusals, credential_fingerprint
from bot.types.credentials import Credentials
from bot.types.diagnosis import Diagnosis

__all__ = ["Limiter", "limiter_for", "windows_for", "reset"]

logger = logging.getLogger("bot.diagnosis")

_SERVER_KEY_LABEL: Final = b"keymedic/diagnosis-limit/v1"

T = TypeVar("T")


def windows_for(
    settings: Settings, server_key: bytes, exchange: str, api_key: str, user_id: str | None
) -> list[Window]:
    """The windows one diagnosis of `api_key` on `exchange` by `user_id` counts against."""
    windows = [
        Window(
            f"key:{key_fingerprint(server_key, exchange, api_key)}",
            settings.diagnosis_key_limit,
            settings.diagnosis_key_window_s,
        )
    ]
    if user_id is not None:
        windows += [
            Window(
                f"user:{user_id}:{exchange}", settings.diagnosis_rate_limit, settings.diagnosis_rate_window_s
            ),
            Window(f"user:{user_id}", settings.diagnosis_user_limit, settings.diagnosis_rate_window_s),
        ]
    return windows


@dataclass
class Limiter:
    """A store and the server key its key windows are named with; `fallback` when the store fails."""

    store: LimitStore
    server_key: bytes
    fallback: MemoryStore | None = None
    # Refused keys and bans (`bot.diagnosis.refusals`), in the same place as the windows, under the same key.
    refusals: Refusals | None = None
    refusals_fallback: Refusals | None = None
    # Whether its calls wait on the network (Redis): then callers on an event loop run them in a worker
    # thread; in-memory calls take microseconds and run in place.
    blocking: bool = False
    # The per-key single flight (`bot.diagnosis.flight`), in the same place as the windows.
    flights: FlightStore = field(default_factory=MemoryFlights)
    flights_fallback: FlightStore | None = None

    def ticket(self, exchange: str, credentials: Credentials) -> Ticket:
        """A diagnosis's place in the flight of its key (named by fingerprints, never by the key)."""
        return Ticket(
            lock_name=f"lock:{key_fingerprint(self.server_key, exchange, credentials.api_key)}",
            outcome_name=f"outcome:{credential_fingerprint(self.server_key, exchange, credentials)}",
        )

    def try_lock(self, ticket: Ticket, ttl_s: float) -> str | None:
        """Take the key's flight lock (None), or say whose flight holds it."""
        return self._flight(lambda store: store.try_lock(ticket.lock_name, ticket.token, ttl_s))

    def unlock(self, ticket: Ticket) -> None:
        self._flight(lambda store: store.unlock(ticket.lock_name, ticket.token))

    def publish(self, ticket: Ticket, diagnosis: Diagnosis) -> None:
        """Leave this flight's outcome for the diagnoses of the same credential that wait for it."""
        value = outcome_value(ticket.token, diagnosis)
        self._flight(lambda store: store.put(ticket.outcome_name, value, OUTCOME_TTL_S))

    def shared_outcome(self, ticket: Ticket) -> Diagnosis | None:
        """The outcome of a flight this diagnosis waited for, on the same credential, or None."""
        if not ticket.waited_for:
            return None
        return published_outcome(ticket, self._flight(lambda store: store.get(ticket.outcome_name)))

    def _flight(self, call: Callable[[FlightStore], T]) -> T:
        try:
            return call(self.flights)
        except Exception as error:  # redis-py's errors, as in `acquire`
            if self.flights_fallback is None:
                raise
            logger.warning("diagnosis single flight: shared store failed (%s)", type(error).__name__)
            return call(self.flights_fallback)

    def remembered(self, exchange: str, credentials: Credentials) -> Diagnosis | None:
        """The answer to give without asking the exchange again (a refusal or a ban), or None."""
        if self.refusals is None:
            return None
        try:
            return self.refusals.check(exchange, credentials)
        except Exception as error:  # redis-py's errors, as in `acquire`
            if self.refusals_fallback is None:
                raise
            logger.warning("diagnosis refusals: shared store failed (%s)", type(error).__name__)
            return self.refusals_fallback.check(exchange, credentials)

    def remember(self, exchange: str, credentials: Credentials, diagnosis: Diagnosis, refused: bool) -> None:
        """Record a refusal or a ban so no replica repeats the attempt."""
        if self.refusals is None:
            return
        try:
            self.refusals.record(exchange, credentials, diagnosis, refused)
        except Exception as error:  # redis-py's errors, as in `acquire`
            if self.refusals_fallback is None:
                raise
            logger.warning("diagnosis refusals: shared store failed (%s)", type(error).__name__)
            self.refusals_fallback.record(exchange, credentials, diagnosis, refused)

    def acquire(self, settings: Settings, exchange: str, api_key: str, user_id: str | None) -> float:
        windows = windows_for(settings, self.server_key, exchange, api_key, user_id)
        try:
            return self.store.acquire(windows)
        except Exception as error:  # redis-py's errors, without importing redis in a local run
            if self.fallback is None:
                raise
            logger.warning(
                "diagnosis limits: shared store failed (%s); this process counts alone", type(error).__name__
            )
            return self.fallback.acquire(windows)

    def reset(self) -> None:
        self.store.reset()
        if self.fallback is not None:
            self.fallback.reset()
        for refusals in (self.refusals, self.refusals_fallback):
            if refusals is not None:
                refusals.store.reset()
        for flights in (self.flights, self.flights_fallback):
            if flights is not None:
                flights.reset()


_limiters: dict[tuple[str, str], Limiter] = {}
_lock = threading.Lock()


def _shared_server_key(settings: Settings) -> bytes:
    """A key every replica derives alike: from the configured encryption keys, else the local key file."""
    from bot.store.crypto import key_file_path, load_key_ring

    if settings.encryption_keys:
        material = settings.encryption_keys.encode()
    else:
        load_key_ring(settings)  # creates the local key file when missing
        material = key_file_path(settings).read_bytes()
    return hmac.new(material, _SERVER_KEY_LABEL, hashlib.sha256).digest()


def limiter_for(settings: Settings) -> Limiter:
    """The process's limiter for this configuration (Redis or memory), built once."""
    config = (settings.redis_url, settings.redis_namespace)
    with _lock:
        found = _limiters.get(config)
        if found is not None:
            return found
        if settings.redis_url:
            import redis  # type: ignore[import-untyped]

            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
            store = RedisStore(client, prefix=f"{settings.redis_namespace}:diagnosis-limit")
            server_key = _shared_server_key(settings)
            signals = RedisSignals(client, prefix=f"{settings.redis_namespace}:diagnosis-refusal")
            built = Limiter(
                store,
                server_key,
                fallback=MemoryStore(),
                refusals=Refusals(signals, server_key),
                refusals_fallback=Refusals(MemorySignals(), server_key),
                blocking=True,
                flights=RedisFlights(client, prefix=f"{settings.redis_namespace}:diagnosis-flight"),
                flights_fallback=MemoryFlights(),
            )
        else:
            server_key = os.urandom(32)
            built = Limiter(MemoryStore(), server_key, refusals=Refusals(MemorySignals(), server_key))
        _limiters[config] = built
        return built


def reset() -> None:
    """Forget every recent diagnosis in every limiter of this process (tests; an operator after a false
    alarm — for Redis, across the deployment)."""
    with _lock:
        limiters = list(_limiters.values())
    for limiter in limiters:
        limiter.reset()
