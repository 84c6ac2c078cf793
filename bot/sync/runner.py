"""Run one resync: claim the run, stage the exchange's history, merge it in one transaction.

    claim      sync run queued -> running (a compare-and-set: a duplicated job finds it taken and stops)
    stage      pages from the `HistorySource` go to `sync_staged_transactions`, a batch per transaction;
               the wallet's transactions are not touched yet
    apply      one transaction: merge by exchange transaction id, mark the run succeeded, retire the
               credential the new one replaced (it has now synced once, DESIGN §5)

A failure while staging or applying leaves the wallet exactly as it was (the apply transaction rolls back as a
whole) and records why on the run. A killed worker leaves the run `running` with an old heartbeat; a retried
job reclaims it after `stale_after` and throws the old staged rows away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from bot.secret import mask
from bot.store import orm
from bot.store.model import CredentialStatus, SyncStatus, utcnow
from bot.store.services import open_credential, retire
from bot.store.unit_of_work import AbstractUnitOfWork
from bot.sync.source import default_history_source
from bot.types.credentials import Credentials
from bot.types.history import HistorySource, HistorySourceFactory, SourceTransaction, WalletRef

__all__ = ["SyncOutcome", "sync_wallet", "describe_failure", "staging_row", "STAGE_BATCH", "STALE_AFTER"]

log = logging.getLogger(__name__)

STAGE_BATCH: Final = 2_000
STALE_AFTER: Final = timedelta(minutes=10)
_HEARTBEAT_EVERY_S: Final = 30.0
_ERROR_MAX_CHARS: Final = 500


@dataclass(frozen=True)
class SyncOutcome:
    """What running a sync job did. `ran` is False when the run was not this job's to run (already finished,
    or running in another worker)."""

    sync_run_id: int
    status: SyncStatus
    ran: bool
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sync_run_id": self.sync_run_id,
            "status": self.status.value,
            "ran": self.ran,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "error": self.error,
        }


class _ClaimLost(Exception):
    """Another worker took the run over (it looked dead to them); this one stops without writing."""


def describe_failure(exc: BaseException, credentials: Credentials | None) -> str:
    """Why a sync failed, fit to store and show support: the exception's class and message, with the wallet's
    own secrets masked in case a client put one in its message, and cut to a bounded length."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if credentials is not None:
        values = [credentials.api_key, credentials.api_secret.reveal()]
        if credentials.passphrase is not None:
            values.append(credentials.passphrase.reveal())
        for value in sorted((v for v in values if v), key=len, reverse=True):
            text = text.replace(value, mask(value))
    return text[:_ERROR_MAX_CHARS]


def staging_row(tx: SourceTransaction) -> dict[str, Any]:
    if tx.occurred_at.tzinfo is None:
        raise ValueError(f"transaction {tx.exchange_tx_id!r} has a naive timestamp")
    return {
        "exchange_tx_id": tx.exchange_tx_id,
        "kind": tx.kind,
        "asset": tx.asset,
        "amount": tx.amount,
        "fee": tx.fee,
        "fee_asset": tx.fee_asset,
        "occurred_at": tx.occurred_at,
        "raw": orm.canonical_json(dict(tx.raw)) if tx.raw is not None else None,
    }


@dataclass
class _Claim:
    run_id: int
    attempt: int
    wallet: WalletRef
    credential_id: int | None
    credentials: Credentials | None
    setup_error: Exception | None


def _claim(
    uow: AbstractUnitOfWork, sync_run_id: int, now: datetime, stale_after: timedelta
) -> _Claim | SyncOutcome:
    with uow:
        attempt = uow.sync_runs.claim(sync_run_id, now=now, stale_before=now - stale_after)
        run = uow.sync_runs.get(sync_run_id)
        if run is None:
            raise LookupError(f"sync run {sync_run_id} does not exist")
        if attempt is None:
            return SyncOutcome(sync_run_id, run.status, ran=False, error=run.error)
        wallet = uow.wallets.get(run.wallet_id)
        assert wallet is not None and wallet.id is not None
        ref = WalletRef(wallet_id=wallet.id, exchange=wallet.exchange, account_label=wallet.account_label)
        # Rows staged by an earlier attempt of this run that was killed halfway.
        uow.transactions.discard_staged(sync_run_id)
        credential = uow.credentials.active(wallet.id)
        credentials: Credentials | None = None
        setup_error: Exception | None = None
        if credential is None:
            setup_error = LookupError("the wallet has no active API key")
        else:
            run.credential_id = credential.id
            try:
                credentials = open_credential(uow, credential)
            except Exception as exc:  # a key ring without the key that sealed it, most likely
                setup_error = exc
        uow.commit()
        return _Claim(sync_run_id, attempt, ref, run.credential_id, credentials, setup_error)


def _stage(uow: AbstractUnitOfWork, claim: _Claim, rows: list[dict[str, Any]], now: datetime) -> None:
    with uow:
        if not uow.sync_runs.heartbeat(claim.run_id, claim.attempt, now):
            raise _ClaimLost
        uow.transactions.stage(claim.run_id, rows)
        uow.commit()


def _apply(uow: AbstractUnitOfWork, claim: _Claim, now: datetime) -> SyncOutcome:
    with uow:
        wallet = uow.wallets.lock(claim.wallet.wallet_id)
        run = uow.sync_runs.lock(claim.run_id)
        if (
            wallet is None
            or run is None
            or run.status is not SyncStatus.RUNNING
            or run.attempt != claim.attempt
        ):
            raise _ClaimLost
        counts = uow.transactions.apply_staged(claim.run_id, claim.wallet.wallet_id, now)
        uow.transactions.discard_staged(claim.run_id)
        run.status = SyncStatus.SUCCEEDED
        run.added, run.updated, run.unchanged = counts.added, counts.updated, counts.unchanged
        run.finished_at = now
        run.error = None
        wallet.last_synced_at = now
        active = uow.credentials.active(claim.wallet.wallet_id)
        if active is not None and active.id == claim.credential_id:
            # The new key has completed a sync: the key it replaced is no longer needed (DESIGN §5).
            for previous in uow.credentials.for_wallet(claim.wallet.wallet_id, CredentialStatus.PREVIOUS):
                retire(previous, now)
        uow.commit()
    return SyncOutcome(
        claim.run_id, SyncStatus.SUCCEEDED, True, counts.added, counts.updated, counts.unchanged
    )


def _fail(uow: AbstractUnitOfWork, claim: _Claim, error: str, now: datetime) -> SyncOutcome:
    with uow:
        run = uow.sync_runs.lock(claim.run_id)
        if run is not None and run.status is SyncStatus.RUNNING and run.attempt == claim.attempt:
            uow.transactions.discard_staged(claim.run_id)
            run.status = SyncStatus.FAILED
            run.error = error
            run.finished_at = now
            uow.commit()
    return SyncOutcome(claim.run_id, SyncStatus.FAILED, True, error=error)


async def sync_wallet(
    uow: AbstractUnitOfWork,
    sync_run_id: int,
    *,
    sources: HistorySourceFactory = default_history_source,
    batch_size: int = STAGE_BATCH,
    stale_after: timedelta = STALE_AFTER,
    clock: Callable[[], datetime] = utcnow,
    progress: Callable[[int], None] | None = None,
) -> SyncOutcome:
    """Run sync run `sync_run_id` once. Safe to call twice, concurrently or after it finished: only one call
    claims the run, and a finished run is never applied again. `progress`, when given, is called with the
    number of transactions fetched so far after each page (`keymedic sync` shows it)."""
    claimed = _claim(uow, sync_run_id, clock(), stale_after)
    if isinstance(claimed, SyncOutcome):
        log.info("sync run %s not claimed (status %s)", sync_run_id, claimed.status.value)
        return claimed
    claim = claimed
    if claim.setup_error is not None:
        return _fail(uow, claim, describe_failure(claim.setup_error, None), clock())
    assert claim.credentials is not None
    try:
        source: HistorySource = sources(claim.wallet.exchange)
        buffer: list[dict[str, Any]] = []
        last_beat = time.monotonic()
        pages = source.pages(claim.wallet, claim.credentials)
        fetched = 0
        async for page in pages:
            rows = [staging_row(tx) for tx in _as_sequence(page)]
            buffer.extend(rows)
            fetched += len(rows)
            if progress is not None:
                progress(fetched)
            if len(buffer) >= batch_size or time.monotonic() - last_beat > _HEARTBEAT_EVERY_S:
                _stage(uow, claim, buffer, clock())
                buffer = []
                last_beat = time.monotonic()
        _stage(uow, claim, buffer, clock())
        outcome = _apply(uow, claim, clock())
    except _ClaimLost:
        log.warning("sync run %s was taken over by another worker; this one stops", sync_run_id)
        return SyncOutcome(sync_run_id, SyncStatus.RUNNING, ran=False)
    except Exception as exc:
        error = describe_failure(exc, claim.credentials)
        log.warning("sync run %s failed: %s", sync_run_id, error)
        return _fail(uow, claim, error, clock())
    except BaseException as exc:  # cancelled or interrupted: say so on the run, then let it propagate
        _fail(uow, claim, describe_failure(exc, claim.credentials) + " (interrupted)", clock())
        raise
    log.info(
        "sync run %s succeeded: %s added, %s updated, %s unchanged",
        sync_run_id,
        outcome.added,
        outcome.updated,
        outcome.unchanged,
    )
    return outcome


def _as_sequence(page: Sequence[SourceTransaction]) -> Sequence[SourceTransaction]:
    if isinstance(page, SourceTransaction):
        raise TypeError(
            "a HistorySource yields pages (sequences of SourceTransaction), not single transactions"
        )
    return page
