"""What every exchange client shares: the error tree, the checklist findings, and the client protocol.

Errors (the root is `ExchangeError`)::

    ExchangeError
    ├── ExchangeUnavailable        no answer about the key; never reported as a bad key
    │   ├── ExchangeUnreachable    connection refused, DNS, TLS, dropped connection      (retried)
    │   ├── ExchangeTimeout        the diagnosis deadline ran out
    │   ├── RateLimited            HTTP 429/418 or the exchange's rate-limit code          (retried*)
    │   ├── ServerError            HTTP 5xx, maintenance                                   (retried)
    │   ├── ClockSkew              timestamp/nonce rejected: our clock, not the key
    │   └── UnexpectedResponse     malformed JSON, an answer KeyMedic cannot read
    └── AuthRejected               the exchange answered and refused the credential (raw code kept);
                                   NEVER retried: exchanges lock keys out for repeated bad attempts
                                   (reference/exchanges.md §0.3)

    * only within the deadline, and not when `Retry-After` is beyond it or the exchange bans (Binance 418,
      Kraken lockout).

An exchange module turns responses into these errors (its "decode" function) and its answers into findings; an
`AuthRejected` carries the checklist outcomes its code means, from the module's error map.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, ClassVar, Final

import httpx

from bot.types.credentials import Credentials
from bot.types.diagnosis import Item, ItemOutcome, Status, Unavailable, UnavailableKind

if TYPE_CHECKING:
    from bot.exchanges._http import Session

__all__ = [
    "ExchangeError",
    "ExchangeUnavailable",
    "ExchangeUnreachable",
    "ExchangeTimeout",
    "RateLimited",
    "ServerError",
    "ClockSkew",
    "UnexpectedResponse",
    "AuthRejected",
    "Verdict",
    "passed",
    "failed",
    "undecided",
    "not_applicable",
    "activity_outcome",
    "Findings",
    "ExchangeClient",
    "settle_all",
    "short",
    "api_target",
    "MillisNonce",
    "positive",
    "FIX_SECRET",
    "FIX_PASSPHRASE",
    "FIX_READ",
    "FIX_IP",
    "FIX_NO_ACTIVITY",
    "DETAIL_IP_NOT_REPORTED",
    "fix_trade_or_withdraw",
]

# --------------------------------------------------------------------------------------------- errors


class ExchangeError(Exception):
    """Root of the errors exchange clients raise. Messages never contain credentials or request bodies."""


class ExchangeUnavailable(ExchangeError):
    """The exchange gave no usable answer; says nothing about the key."""

    kind: ClassVar[UnavailableKind] = "server_error"
    retryable_by_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        raw_code: str | None = None,
        retry_after_s: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.raw_code = raw_code
        self.retry_after_s = retry_after_s
        self.retryable = self.retryable_by_default if retryable is None else retryable

    def to_unavailable(self) -> Unavailable:
        return Unavailable(
            kind=self.kind, message=self.message, retry_after_s=self.retry_after_s, raw_code=self.raw_code
        )


class ExchangeUnreachable(ExchangeUnavailable):
    kind = "unreachable"
    retryable_by_default = True


class ExchangeTimeout(ExchangeUnavailable):
    kind = "timeout"


class RateLimited(ExchangeUnavailable):
    kind = "rate_limited"
    retryable_by_default = True


class ServerError(ExchangeUnavailable):
    kind = "server_error"
    retryable_by_default = True


class ClockSkew(ExchangeUnavailable):
    kind = "clock_skew"


class UnexpectedResponse(ExchangeUnavailable):
    kind = "server_error"


Verdict = tuple[ItemOutcome, ...]


class AuthRejected(ExchangeError):
    """The exchange refused the credential. `outcomes` are what its `raw_code` means for the checklist."""

    def __init__(self, raw_code: str, message: str, outcomes: Verdict) -> None:
        super().__init__(f"{raw_code}: {message}")
        self.raw_code = raw_code
        self.message = message
        self.outcomes = outcomes


def short(text: str, limit: int = 200) -> str:
    """An exchange's message, shortened for logs and details (it is the exchange's text, never ours)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def api_target(request: httpx.Request, prefix: str, *, with_query: bool = True) -> str:
    """The path (and `?query`) as sent, without the base URL's path prefix: what exchanges sign.

    The sandbox serves every exchange under a prefix (`/kraken/0/private/Balance`) and verifies the signature
    over the exchange's own path (`/0/private/Balance`); against the real exchange the prefix is empty.
    """
    target = request.url.raw_path.decode("ascii")
    if prefix and target.startswith(prefix):
        target = target[len(prefix) :]
    if not with_query:
        target = target.split("?", 1)[0]
    return target


class MillisNonce:
    """Milliseconds since the epoch, strictly increasing within the process: max(now_ms, last + 1).

    The production nonce scheme (reference/exchanges.md §0.2): a key tested by KeyMedic must not end up with a
    larger nonce than the sync job sends, or the sync fails afterwards with "invalid nonce".
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = 0

    def __call__(self) -> int:
        with self._lock:
            self._last = max(int(self._clock() * 1000), self._last + 1)
            return self._last


def positive(*amounts: object) -> bool:
    """Whether any of the exchange's amount strings ("0.50120000", "", None) is above zero."""
    for amount in amounts:
        if amount is None or amount == "":
            continue
        try:
            if Decimal(str(amount)) > 0:
                return True
        except (InvalidOperation, ValueError):
            continue
    return False


# ------------------------------------------------------------------------------------------- findings


def passed(item: Item, detail: str | None = None) -> ItemOutcome:
    return ItemOutcome(item, Status.PASS, detail=detail)


def failed(item: Item, fix: str, detail: str | None = None) -> ItemOutcome:
    return ItemOutcome(item, Status.FAIL, fix=fix, detail=detail)


def undecided(item: Item, detail: str, fix: str | None = None) -> ItemOutcome:
    return ItemOutcome(item, Status.UNKNOWN, fix=fix, detail=detail)


def not_applicable(item: Item, detail: str | None = None) -> ItemOutcome:
    return ItemOutcome(item, Status.NOT_APPLICABLE, detail=detail)


# A later, more specific answer may sharpen an item but never soften it: a FAIL found by one call stays a FAIL
# when another call passes, and nothing turns back into UNKNOWN.
_STRENGTH: Final = {Status.UNKNOWN: 0, Status.NOT_APPLICABLE: 1, Status.PASS: 2, Status.FAIL: 3}


class Findings:
    """The outcomes gathered while probing one key; items never reached stay UNKNOWN."""

    def __init__(self) -> None:
        self._outcomes: dict[Item, ItemOutcome] = {}

    def add(self, *outcomes: ItemOutcome, raw_code: str | None = None) -> None:
        for outcome in outcomes:
            if raw_code is not None and outcome.raw_code is None:
                outcome = dataclasses.replace(outcome, raw_code=raw_code)
            current = self._outcomes.get(outcome.item)
            if current is None or _STRENGTH[outcome.status] >= _STRENGTH[current.status]:
                self._outcomes[outcome.item] = outcome

    def rejected(self, exc: AuthRejected) -> None:
        """Record what an authentication rejection means for the checklist."""
        self.add(*exc.outcomes, raw_code=exc.raw_code)

    def status(self, item: Item) -> Status:
        outcome = self._outcomes.get(item)
        return outcome.status if outcome else Status.UNKNOWN

    def complete(self, default_detail: str) -> tuple[ItemOutcome, ...]:
        """One outcome per Item, in order; the ones never reached are UNKNOWN with `default_detail`."""
        return tuple(self._outcomes.get(item) or undecided(item, default_detail) for item in Item)


async def settle_all(findings: Findings, checks: Iterable[Awaitable[None]]) -> None:
    """Run independent checks concurrently. Each writes its own findings; an authentication rejection in one
    is recorded and the others carry on; the first unavailability is raised once all have finished (so no
    request outlives the diagnosis)."""
    results = await asyncio.gather(*checks, return_exceptions=True)
    unavailable: ExchangeUnavailable | None = None
    for result in results:
        if isinstance(result, AuthRejected):
            findings.rejected(result)
        elif isinstance(result, ExchangeUnavailable):
            unavailable = unavailable or result
        elif isinstance(result, BaseException):
            raise result
    if unavailable is not None:
        raise unavailable


# ------------------------------------------------------------------------------------ client protocol


class ExchangeClient(abc.ABC):
    """One exchange's live key check. Subclasses set the class attributes and implement `probe`.

    `probe` first makes one authenticated "gate" call that settles key, secret and passphrase, and only when
    it passes makes the remaining calls (concurrently where the exchange's nonce scheme allows). So a bad key
    costs exactly one rejected request per diagnosis (reference/exchanges.md §0.3).
    """

    exchange: ClassVar[str]
    default_base_url: ClassVar[str]
    needs_passphrase: ClassVar[bool] = False

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    @classmethod
    def shape_problems(cls, credentials: Credentials) -> list[str]:
        """Exchange-specific format problems (wrong shape, truncation), each a sentence the user can act on.
        Called after the generic checks (whitespace, missing fields) passed; sends nothing."""
        return []

    def preset(self, findings: Findings) -> None:
        """Outcomes known before any request (items that do not apply to this exchange)."""
        if not self.needs_passphrase:
            findings.add(not_applicable(Item.PASSPHRASE_OK, "This exchange's keys have no passphrase."))

    @abc.abstractmethod
    async def probe(self, session: Session, findings: Findings) -> None:
        """Ask the exchange about the key and record what each answer means."""


# ------------------------------------------------------------------------------------- shared fix texts
# True to the help article's checklist (reference/update-api-key-article.txt); exchange modules add specifics.

FIX_SECRET: Final = (
    "The API secret doesn't match this key. Copy the secret again in full, with no spaces or line breaks; "
    "if you no longer have it, create a new read-only key (exchanges show the secret only once)."
)
FIX_PASSPHRASE: Final = (
    "The passphrase doesn't match this key. Enter the passphrase you chose when you created the key; if you "
    "don't have it any more, create a new read-only key and save its passphrase somewhere safe."
)
FIX_READ: Final = (
    "This key isn't allowed to read your account. Create a new key with read-access permissions turned on "
    "(and trading and withdrawals left off)."
)
FIX_IP: Final = (
    "There is an IP whitelist on this key — KeyMedic syncs from changing addresses, so create a key without "
    "IP restrictions."
)
FIX_NO_ACTIVITY: Final = (
    "The exchange shows no transactions on this account, so there is nothing to sync yet. If you haven't "
    "deposited or traded, that's expected; otherwise check the key was created on the account you trade on."
)


def activity_outcome(activity: Sequence[str], none_found: str) -> ItemOutcome:
    """`HAS_ACTIVITY` from what the probe's calls found (`["a balance", "trades"]`): a pass naming it, or,
    with nothing found, unknown with `none_found`, the exchange's own caveat (no single call shows all of
    an account's history, so "nothing" is never a failure), and the fix."""
    if activity:
        return passed(Item.HAS_ACTIVITY, "Found " + " and ".join(activity) + ".")
    return undecided(Item.HAS_ACTIVITY, none_found, fix=FIX_NO_ACTIVITY)


DETAIL_IP_NOT_REPORTED: Final = (
    "This exchange doesn't report whether an IP allowlist is set on a key. Please check that the key has "
    "no IP restriction."
)


def fix_trade_or_withdraw(*, withdraw: bool, trade: bool) -> str:
    """The fix for a key that can move funds: name what is on, and say to replace the key."""
    if withdraw and trade:
        what = "Withdrawals and trading are enabled on this key"
    elif withdraw:
        what = "Withdrawals are enabled on this key"
    else:
        what = "Trading is enabled on this key"
    return f"{what} — create a new read-only key instead (KeyMedic only reads your history)."
