"""Reading a wallet's whole history through the exchange clients: the shared part of the history adapters.

Each `<exchange>_history` module subclasses `HistoryReader` and implements `read(session, credentials)`, an
async generator of pages of `SourceTransaction` that follows the exchange's own pagination. The base class
gives every adapter the same HTTP policy as a diagnosis (the exchange module's signer and decoder,
`_http.Session`'s retries), with two differences that fit a long background job (docs/store.md "History
adapters"):

- **a deadline per call, not per job**: each API call, its retries and back-off sleeps included, must finish
  within `KEYMEDIC_SYNC_REQUEST_DEADLINE` (60 s); a big wallet takes thousands of calls, so there is no
  overall deadline (the runner's heartbeat watches for a dead worker instead);
- **a patient retry policy**: up to 5 attempts, back-off from 1 s to 30 s, honouring `Retry-After` (within the
  call's deadline), for 429/5xx/network errors only.

An authentication error is never retried: it stops the sync as `bot.types.history.KeyRejected` with the
exchange's raw code. Calls are sequential: Kraken and Gemini refuse a nonce lower than one already accepted
(reference/exchanges.md §0.2), and pages of one cursor depend on each other anyway.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

import httpx

from bot.config import exchange_base_url, load_settings
from bot.exchange_ids import DISPLAY_NAMES
from bot.exchanges._base import AuthRejected, ExchangeClient, UnexpectedResponse
from bot.exchanges._http import RetryPolicy, Session, new_client
from bot.types.credentials import Credentials
from bot.types.history import HistoryError, KeyRejected, SourceTransaction, WalletRef

__all__ = [
    "SYNC_RETRY_POLICY",
    "HistoryReader",
    "Page",
    "decimal",
    "fee_or_none",
    "from_ms",
    "from_s",
    "from_rfc3339",
    "from_utc_text",
    "shape_error",
    "CursorGuard",
    "trade_legs",
    "records",
]

SYNC_RETRY_POLICY: Final = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=30.0)

Page = Sequence[SourceTransaction]


class HistoryReader(abc.ABC):
    """A `bot.types.history.HistorySource` for one exchange. The constructor's arguments all have defaults
    (the `ADAPTERS` seam calls it with none); tests pass a client on an `httpx.MockTransport`."""

    exchange: ClassVar[str]
    # The exchange's live client: its default base URL and its key-shape check.
    client_class: ClassVar[type[ExchangeClient]]

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        per_call_s: float | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._policy = policy or SYNC_RETRY_POLICY
        self._per_call_s = per_call_s
        self.requests_sent = 0

    @property
    def name(self) -> str:
        return DISPLAY_NAMES.get(self.exchange, self.exchange)  # type: ignore[call-overload, no-any-return]

    async def pages(self, wallet: WalletRef, credentials: Credentials) -> AsyncIterator[Page]:
        """The wallet's history page by page; raises `KeyRejected` when the exchange refuses the key."""
        problems = self.client_class.shape_problems(credentials)
        if problems:
            # The stored key cannot be signed with (a cryptic error otherwise); the texts hold no secret.
            raise HistoryError(f"the stored {self.name} key is malformed: " + " ".join(problems))
        per_call_s = self._per_call_s or load_settings().sync_request_deadline_s
        base_url = self._base_url or exchange_base_url(self.exchange, self.client_class.default_base_url)
        client = self._client or new_client()
        session = Session(
            client, exchange=self.name, base_url=base_url, per_call_s=per_call_s, policy=self._policy
        )
        try:
            async for page in self.read(session, credentials):
                if page:
                    yield page
        except AuthRejected as exc:
            # Never retried (reference/exchanges.md §0.3); named so a hand-off can recognise it later.
            raise KeyRejected(self.exchange, exc.raw_code, exc.message) from exc
        finally:
            self.requests_sent += session.requests_sent
            if self._client is None:
                await client.aclose()

    @abc.abstractmethod
    def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        """Follow the exchange's pagination to the end, yielding each page's transactions."""


class CursorGuard:
    """Stops a pagination that would loop: an exchange answering the same cursor twice is a bug on one side,
    and following it would never end."""

    def __init__(self, name: str, endpoint: str) -> None:
        self._name = name
        self._endpoint = endpoint
        self._seen: set[str] = set()

    def check(self, cursor: str) -> None:
        if cursor in self._seen:
            raise UnexpectedResponse(f"{self._name} repeated a page of {self._endpoint}; the sync stopped")
        self._seen.add(cursor)


def shape_error(name: str, what: str) -> UnexpectedResponse:
    return UnexpectedResponse(f"{name} answered {what} with an unexpected shape")


def decimal(value: object, name: str = "the exchange") -> Decimal:
    """An exchange's amount ("0.05000000", 12, "-1250.00") as an exact Decimal."""
    if isinstance(value, bool) or value is None or value == "":
        raise UnexpectedResponse(f"{name} sent a transaction without an amount")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise UnexpectedResponse(f"{name} sent an amount KeyMedic cannot read") from None
    if not number.is_finite():
        raise UnexpectedResponse(f"{name} sent an amount KeyMedic cannot read")
    return number


def fee_or_none(value: object, name: str = "the exchange") -> Decimal | None:
    """A fee as a positive Decimal, or None when there is none (absent, empty or zero)."""
    if value is None or value == "":
        return None
    fee = abs(decimal(value, name))
    return fee if fee else None


def from_ms(value: object) -> datetime:
    """A UTC datetime from epoch milliseconds (int or numeric string)."""
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise UnexpectedResponse("an exchange sent a timestamp KeyMedic cannot read") from None


def from_s(value: object) -> datetime:
    """A UTC datetime from epoch seconds (int, float or numeric string)."""
    try:
        return datetime.fromtimestamp(float(str(value)), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise UnexpectedResponse("an exchange sent a timestamp KeyMedic cannot read") from None


def from_rfc3339(value: object) -> datetime:
    """`2023-07-04T09:54:44.178Z` (any length of fraction, `Z` or an offset) as a UTC datetime."""
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        text = f"{head}.{(digits + '000000')[:6]}{rest[len(digits) :]}"
    return _utc(text)


def from_utc_text(value: object) -> datetime:
    """`2023-07-04 09:54:44` or `2023-07-04 09:54:44.178000`, a UTC time without zone (Binance, Bitstamp)."""
    return _utc(str(value).strip())


def _utc(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UnexpectedResponse("an exchange sent a time KeyMedic cannot read") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def trade_legs(
    tx_id: str,
    *,
    base: str,
    quote: str,
    base_amount: Decimal,
    quote_amount: Decimal,
    occurred_at: datetime,
    fee: Decimal | None,
    fee_asset: str | None,
    raw: Mapping[str, Any],
) -> list[SourceTransaction]:
    """A trade as two movements, one per asset, like a ledger shows it (Kraken's two entries per trade):
    `<tx_id>:<asset>` each, signed amounts, the fee on the leg of its own asset (else on the base leg)."""
    on_quote = fee is not None and fee_asset == quote and quote != base
    return [
        SourceTransaction(
            exchange_tx_id=f"{tx_id}:{base}",
            kind="trade",
            asset=base,
            amount=base_amount,
            occurred_at=occurred_at,
            fee=None if on_quote else fee,
            fee_asset=None if on_quote or fee is None else fee_asset,
            raw=raw,
        ),
        SourceTransaction(
            exchange_tx_id=f"{tx_id}:{quote}",
            kind="trade",
            asset=quote,
            amount=quote_amount,
            occurred_at=occurred_at,
            fee=fee if on_quote else None,
            fee_asset=fee_asset if on_quote else None,
            raw=raw,
        ),
    ]


def records(value: object, name: str, what: str) -> list[dict[str, Any]]:
    """A list of JSON objects (the rows of one page), or `UnexpectedResponse`."""
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise shape_error(name, what)
    return value
