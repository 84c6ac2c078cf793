"""Proactive outreach: after a resync failed because the exchange refused the key, offer the fix in the user's
conversation, at most once per wallet and UTC day.

    claim_outreach   one transaction: the run failed on the key, the failing key is still the wallet's
                     key; take the day's row (`reserve`, the once-a-day rule) and claim it (leased CAS)
    reach_out        no transaction open: choose the conversation, look at it, trigger the intent
    settle           one transaction: sent, skipped (and why), or pending again when Rasa did not answer

Which conversation: among the user's conversations on a channel that can take a message KeyMedic starts (the
widget's socket.io conversation, which is `channels.identity.session_id_for(user)` and linked on connect; the
REST channel's sender id in local runs), the one where the user wrote last, by Rasa's `latest_event_time`.
That is where they are most likely to see it, and an offer in a conversation they never opened would only
wait there unseen, so a user without one is skipped (`no_conversation`). Slack threads are not used: a
proactive Slack message would start a new thread, which this does not do yet.

A paused conversation (a person from support is on it) is never interrupted, nor one with a form running
(the user is already fixing something, and the trigger would overwrite the form's wallet): both count as the
day's outreach, skipped, with the reason in `detail`. Rasa itself also stays silent in a paused conversation
(`MessageProcessor._should_handle_message`), so a pause that lands between the look and the trigger still
interrupts nothing.

Delivery is at least once per claim: if Rasa applied the trigger but its answer was lost, the retry first
looks in the conversation for the trigger it already made (the `outreach_id` entity) and does not repeat it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from bot.exchange_ids import DISPLAY_NAMES
from bot.handoff.rasa import (
    ConversationState,
    RasaConversations,
    RasaUnavailable,
    UnaddressableConversation,
)
from bot.outreach.repository import PENDING, SENT, SKIPPED, OutreachRepository
from bot.store.model import SyncStatus, utcnow
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.history import key_rejection

__all__ = [
    "INTENT",
    "OUTREACH_CHANNELS",
    "LEASE",
    "OutreachClaim",
    "OutreachResult",
    "OutreachRetry",
    "claim_outreach",
    "reach_out",
    "run_outreach",
]

log = logging.getLogger(__name__)

INTENT: Final = "EXTERNAL_key_failed"
# Channels whose sender id is a conversation KeyMedic can speak in first (see the module docstring).
OUTREACH_CHANNELS: Final = ("socketio", "rest")
# How long a claim holds the row: longer than the Rasa calls of one attempt (10 s timeout each, a handful).
LEASE: Final = timedelta(minutes=2)


class OutreachRetry(Exception):
    """Rasa did not answer; the row is pending again and the job should be retried."""


@dataclass(frozen=True)
class OutreachClaim:
    """This job's claim on the day's outreach of a wallet."""

    outreach_id: int
    attempt: int
    sync_run_id: int
    wallet_id: int
    exchange: str
    candidates: tuple[str, ...]
    created_at: datetime

    @property
    def entities(self) -> dict[str, str]:
        # `exchange` and `wallet_id` fill the key update form's slots, so a "yes" goes straight to this
        # wallet; `exchange_name` is the response's wording; `outreach_id` lets a retry find its own trigger.
        return {
            "exchange": self.exchange,
            "wallet_id": str(self.wallet_id),
            "exchange_name": _display_name(self.exchange),
            "outreach_id": str(self.outreach_id),
        }


@dataclass(frozen=True)
class OutreachResult:
    """What one outreach job did. `outcome`: sent, already_today, in_progress, not_key_failure, key_replaced,
    no_conversation, paused, busy."""

    sync_run_id: int
    outcome: str
    outreach_id: int | None = None
    conversation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sync_run_id": self.sync_run_id,
            "outcome": self.outcome,
            "outreach_id": self.outreach_id,
            "conversation_id": self.conversation_id,
        }


def _display_name(exchange: str) -> str:
    for known, name in DISPLAY_NAMES.items():
        if known == exchange:
            return name
    return exchange


def claim_outreach(
    uow: SqlAlchemyUnitOfWork, sync_run_id: int, *, now: datetime, lease: timedelta = LEASE
) -> OutreachClaim | OutreachResult:
    """Decide whether sync run `sync_run_id` calls for an outreach and, if so, claim the wallet's row of the
    day. Commits. Raises `LookupError` for an unknown run."""
    with uow:
        run = uow.sync_runs.get(sync_run_id)
        if run is None:
            raise LookupError(f"sync run {sync_run_id} does not exist")
        rejected = key_rejection(run.error) if run.status is SyncStatus.FAILED else None
        if rejected is None:
            return OutreachResult(sync_run_id, "not_key_failure")
        active = uow.credentials.active(run.wallet_id)
        if active is None or active.id != run.credential_id:
            # The user replaced the key since (or the run had none): nothing to offer.
            return OutreachResult(sync_run_id, "key_replaced")
        wallet = uow.wallets.get(run.wallet_id)
        assert wallet is not None and wallet.id is not None
        repo = OutreachRepository(uow.session)
        day = now.date()  # `now` is UTC: one outreach per wallet and UTC day
        repo.reserve(
            wallet_id=wallet.id,
            day=day,
            user_id=wallet.user_id,
            sync_run_id=sync_run_id,
            exchange=wallet.exchange,
            raw_code=rejected[1],
            now=now,
        )
        row = repo.for_day(wallet.id, day)
        assert row is not None
        attempt = repo.claim(row.id, now=now, lease_until=now + lease)
        if attempt is None:
            uow.commit()
            busy = row.status not in (SENT, SKIPPED)
            return OutreachResult(sync_run_id, "in_progress" if busy else "already_today", row.id)
        candidates = tuple(repo.conversations_of(wallet.user_id, OUTREACH_CHANNELS))
        uow.commit()
        return OutreachClaim(
            outreach_id=row.id,
            attempt=attempt,
            sync_run_id=sync_run_id,
            wallet_id=wallet.id,
            exchange=wallet.exchange,
            candidates=candidates,
            created_at=row.created_at,
        )


def _triggered_already(events: list[dict[str, Any]], claim: OutreachClaim) -> bool:
    for event in events:
        if event.get("event") != "user":
            continue
        parsed = event.get("parse_data") or {}
        if (parsed.get("intent") or {}).get("name") != INTENT:
            continue
        entities = {
            e.get("entity"): e.get("value") for e in parsed.get("entities") or [] if isinstance(e, Mapping)
        }
        if entities.get("outreach_id") == str(claim.outreach_id):
            return True
    return False


async def reach_out(rasa: RasaConversations, claim: OutreachClaim) -> tuple[str, str | None]:
    """Choose the conversation and speak in it; returns (outcome, conversation id). Raises
    `RasaUnavailable`."""
    states: list[ConversationState] = []
    for conversation_id in claim.candidates:
        try:
            state = await rasa.state(conversation_id)
        except UnaddressableConversation:  # Rasa's HTTP API cannot reach this id: not a candidate
            continue
        if state.started:
            states.append(state)
    if not states:
        return "no_conversation", None
    chosen = max(states, key=lambda s: s.latest_event_time or 0.0)
    if chosen.paused:
        return "paused", chosen.conversation_id
    if chosen.active_loop is not None:
        return "busy", chosen.conversation_id
    if claim.attempt > 1 and _triggered_already(await rasa.events(chosen.conversation_id), claim):
        return "sent", chosen.conversation_id
    await rasa.trigger_intent(chosen.conversation_id, INTENT, claim.entities)
    return "sent", chosen.conversation_id


def _settle(
    uow: SqlAlchemyUnitOfWork,
    claim: OutreachClaim,
    *,
    status: str,
    now: datetime,
    conversation_id: str | None = None,
    detail: str | None = None,
) -> bool:
    with uow:
        settled = OutreachRepository(uow.session).settle(
            claim.outreach_id,
            attempt=claim.attempt,
            status=status,
            now=now,
            conversation_id=conversation_id,
            detail=detail,
        )
        uow.commit()
    return settled


async def run_outreach(
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
    rasa: RasaConversations,
    sync_run_id: int,
    *,
    clock: Callable[[], datetime] = utcnow,
    lease: timedelta = LEASE,
) -> OutreachResult:
    """The outreach job for one failed sync run. Safe to run twice or concurrently: the day's row is taken
    once and claimed by one job at a time. Raises `OutreachRetry` when Rasa did not answer."""
    claimed = claim_outreach(uow_factory(), sync_run_id, now=clock(), lease=lease)
    if isinstance(claimed, OutreachResult):
        log.info("outreach for sync run %s: %s", sync_run_id, claimed.outcome)
        return claimed
    try:
        outcome, conversation_id = await reach_out(rasa, claimed)
    except RasaUnavailable as error:
        _settle(uow_factory(), claimed, status=PENDING, now=clock(), detail=str(error))
        log.warning("outreach %s for sync run %s: %s; will retry", claimed.outreach_id, sync_run_id, error)
        raise OutreachRetry(str(error)) from None
    status = SENT if outcome == "sent" else SKIPPED
    detail = None if outcome == "sent" else outcome
    if not _settle(
        uow_factory(), claimed, status=status, now=clock(), conversation_id=conversation_id, detail=detail
    ):
        log.warning("outreach %s: the claim was taken over while this job ran", claimed.outreach_id)
    log.info(
        "outreach for sync run %s: %s (outreach %s, conversation %s)",
        sync_run_id,
        outcome,
        claimed.outreach_id,
        conversation_id,
    )
    return OutreachResult(sync_run_id, outcome, claimed.outreach_id, conversation_id)
