"""Shared pieces of the exchange sandbox: a framework-free request/response pair and the exchange base class.

Each exchange module turns a `SandboxRequest` (the un-prefixed API path, the raw query string exactly as sent,
the headers, the raw body, the Host header and the caller's IP) into a `SandboxResponse`. Nothing here knows
about aiohttp, so the verifiers and handlers are unit-tested without sockets; `server.py` adapts them.

The order of checks mirrors a real exchange gateway: route → key lookup → infrastructure faults of that key
(`down`, `rate_limited`) → timestamp/nonce window → signature → passphrase → key state (revoked, not
activated, IP allowlist) → the endpoint's answer for the key's scenario.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox._history import DEFAULT_HISTORY_SIZE, HistoryBook
from bot.sandbox.scenarios import SandboxKey, registered_key

__all__ = [
    "SandboxRequest",
    "SandboxResponse",
    "ExchangeSandbox",
    "Route",
    "PublicHandler",
    "json_response",
    "text_response",
    "hmac_digest",
    "safe_equal",
    "Clock",
]

Clock = Callable[[], float]


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request as the exchange would see it, with the sandbox's `/<exchange_id>` prefix removed."""

    method: str
    path: str
    raw_query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    host: str = "127.0.0.1"
    remote: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name, or None."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def path_with_query(self) -> str:
        return f"{self.path}?{self.raw_query}" if self.raw_query else self.path

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class SandboxResponse:
    """What the exchange answers; `delay_s` is the extra wait before sending it (the `slow` key), `cut` says
    the connection drops halfway through the body (the `dropped` key)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    cut: bool = False

    def json(self) -> Any:
        return json.loads(self.body)

    def with_delay(self, delay_s: float) -> SandboxResponse:
        return SandboxResponse(self.status, self.body, self.content_type, self.headers, delay_s, self.cut)

    def with_cut(self) -> SandboxResponse:
        return SandboxResponse(self.status, self.body, self.content_type, self.headers, self.delay_s, True)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    """A JSON answer with compact separators, as the exchanges send them."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return SandboxResponse(status, body, "application/json", tuple((headers or {}).items()))


def text_response(text: str, status: int, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    """A plain-text answer (Coinbase's bare `Unauthorized`)."""
    return SandboxResponse(status, text.encode(), "text/plain", tuple((headers or {}).items()))


def hmac_digest(key: bytes, message: bytes, digest: str) -> bytes:
    """HMAC with the named hashlib digest."""
    return hmac.new(key, message, getattr(hashlib, digest)).digest()


def safe_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two signatures, so the sandbox does not teach timing attacks."""
    return hmac.compare_digest(given.encode(), expected.encode())


Handler = Callable[[SandboxRequest, SandboxKey], SandboxResponse]
PublicHandler = Callable[[SandboxRequest], SandboxResponse]


@dataclass(frozen=True)
class Route:
    """One private endpoint: its HTTP method, its API path, and what it answers for an authenticated key."""

    method: str
    path: str
    handler: Handler


class ExchangeSandbox(ABC):
    """One exchange: its routes, its authentication, its error bodies."""

    exchange_id: str = ""

    def __init__(
        self,
        clock: Clock = time.time,
        slow_latency_s: float = 3.0,
        history_size: int = DEFAULT_HISTORY_SIZE,
    ) -> None:
        self._clock = clock
        self.slow_latency_s = slow_latency_s
        # Rows of history each history-bearing key sees (`_history.HistoryBook`; empty_account sees none).
        self.history_size = history_size
        # Per-key nonce memory: the last accepted nonce (Kraken, Gemini) and recently used one-off nonces with
        # their expiry (Bitstamp). One sandbox instance lives as long as the server, like the exchange's own.
        self.last_nonce: dict[str, int] = {}
        self.used_nonces: dict[str, dict[str, float]] = {}

    def now(self) -> float:
        return self._clock()

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def history(self, key: SandboxKey) -> HistoryBook:
        """This key's history as of now: `history_size` rows, or none for the `empty_account` key."""
        size = 0 if key.scenario == "empty_account" else self.history_size
        return HistoryBook(self.exchange_id, size, self.now())

    @abstractmethod
    def routes(self) -> list[Route]:
        """The private endpoints this exchange answers."""

    def public_routes(self) -> dict[tuple[str, str], PublicHandler]:
        """Unauthenticated endpoints (server time), keyed by (method, path)."""
        return {}

    @abstractmethod
    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        """The exchange's answer for a path it does not have."""

    @abstractmethod
    def authenticate(self, request: SandboxRequest) -> SandboxKey | SandboxResponse:
        """Check the request's signature scheme; the key it was signed with, or the exchange's error."""

    @abstractmethod
    def key_state_error(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        """The error a signed request gets because of the key's state (revoked, IP, …), or None."""

    @abstractmethod
    def fault(self, request: SandboxRequest, key: SandboxKey) -> SandboxResponse | None:
        """The `down` / `rate_limited` answer for this key, or None."""

    def lookup(self, api_key: str) -> SandboxKey | None:
        """The registered key with this id (None for unknown or malformed keys)."""
        return registered_key(self.exchange_id, api_key)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request the way the exchange would."""
        public = self.public_routes().get((request.method, request.path))
        if public is not None:
            return public(request)
        route = next((r for r in self.routes() if r.path == request.path), None)
        if route is None:
            return self.not_found(request)
        if route.method != request.method:
            return self.method_not_allowed(request)
        outcome = self.authenticate(request)
        if isinstance(outcome, SandboxResponse):
            return outcome
        key = outcome
        error = self.key_state_error(request, key)
        if error is not None:
            return error
        response = route.handler(request, key)
        if key.scenario == "slow":
            return response.with_delay(self.slow_latency_s)
        if key.scenario == "dropped":
            return response.with_cut()
        return response

    def method_not_allowed(self, request: SandboxRequest) -> SandboxResponse:
        return self.not_found(request)
