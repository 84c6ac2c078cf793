"""Hand-off services: functions that take a unit of work (cosmicpython's `services.py`).

`bot.assistant.SupportDesk.open_ticket` creates or reuses the conversation's ticket (one per conversation)
and calls `ticket_opened` in the same transaction, which queues the notification to support in the outbox.
Everything else an agent does to a ticket goes through here, and only the agent API calls it:
`approve_removal` is the one way a ticket becomes "removal approved".

HandoffError
├── TicketNotFound     no ticket with that id (or for that conversation)
└── TicketClosed       the ticket is closed; replies and approvals need an open one
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from bot.handoff.transcript import Redactor, merge_turns, transcript_turns
from bot.observability import metrics
from bot.store.model import OutboxMessage, Ticket, utcnow
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = [
    "HandoffError",
    "TicketNotFound",
    "TicketClosed",
    "TICKET_OPENED",
    "SUPPORT_REASONS",
    "ticket_opened",
    "ticket_summary",
    "record_transcript",
    "ticket_view",
    "record_agent_action",
    "approve_removal",
    "close_ticket",
    "removal_approved",
]

# The outbox reason of a ticket notification, and every reason the support webhook delivers.
TICKET_OPENED: Final = "ticket_opened"
SUPPORT_REASONS: Final = (TICKET_OPENED,)
OPEN, CLOSED = "open", "closed"
_FAILING: Final = ("fail", "unknown")
MAX_HISTORY: Final = 200


class HandoffError(Exception):
    """Root of the hand-off services' errors. Messages hold ids and statuses only."""


class TicketNotFound(HandoffError):
    pass


class TicketClosed(HandoffError):
    pass


def _copy(payload: Mapping[str, Any]) -> dict[str, Any]:
    # A new dict all the way down: SQLAlchemy sees a JSON column change only by comparison.
    copied: dict[str, Any] = json.loads(json.dumps(payload, default=str))
    return copied


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def ticket_summary(uow: AbstractUnitOfWork, ticket: Ticket) -> dict[str, Any]:
    """What a notification says about a ticket: who, which wallet, why, what failed (with the exchange's
    raw codes), the checklist answers and the manual edits at stake. Holds no secret and no transcript."""
    payload = ticket.payload
    user = uow.users.get(ticket.user_id) if ticket.user_id is not None else None
    wallet = uow.wallets.get(ticket.wallet_id) if ticket.wallet_id is not None else None
    diagnosis = payload.get("diagnosis") or {}
    failing = [
        {"item": item.get("item"), "status": item.get("status"), "raw_code": item.get("raw_code")}
        for item in diagnosis.get("items") or []
        if item.get("status") in _FAILING
    ]
    unavailable = diagnosis.get("unavailable")
    return {
        "ticket_id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "channel": payload.get("channel"),
        "reason": ticket.reason,
        "reasons": list(payload.get("reasons") or [ticket.reason]),
        "opening": payload.get("openings", 1),
        "user": ({"id": user.id, "handle": user.handle, "display_name": user.display_name} if user else None),
        "wallet": (
            {
                "id": wallet.id,
                "exchange": wallet.exchange,
                "account_label": wallet.account_label,
                "display_name": wallet.display_name,
            }
            if wallet
            else None
        ),
        "diagnosis": {
            "tested": bool(diagnosis),
            "all_passed": diagnosis.get("all_passed"),
            "failing_items": failing,
            "exchange_unavailable": (
                {"kind": unavailable.get("kind"), "raw_code": unavailable.get("raw_code")}
                if isinstance(unavailable, Mapping)
                else None
            ),
        },
        "checklist": dict(payload.get("checklist") or {}),
        "edits_at_stake": payload.get("removal_impact"),
        "created_at": _iso(ticket.created_at),
    }


def ticket_opened(uow: AbstractUnitOfWork, ticket: Ticket, *, now: datetime | None = None) -> str | None:
    """Call in the transaction that opened or reused `ticket`: reopens a closed ticket, marks the bot paused,
    and queues one notification to support per opening (a retried message or a second request while the
    ticket is open queues nothing). Returns the new notification's delivery id, or None. Does not commit.

    The notification is written in the ticket's transaction, so a ticket is never opened without one (the
    outbox pattern); `bot.jobs.deliver_outbox` delivers it.
    """
    now = now or utcnow()
    payload = _copy(ticket.payload)
    fresh = "openings" not in payload
    if not fresh and ticket.status != CLOSED:
        if not payload.get("bot_paused"):
            payload["bot_paused"] = True
            ticket.payload = payload
        return None
    payload["openings"] = int(payload.get("openings", 0)) + 1
    payload["bot_paused"] = True
    if not fresh:
        _append_history(payload, action="reopened", by="bot", at=now)
    ticket.status = OPEN
    ticket.updated_at = now
    ticket.payload = payload
    uow.flush()
    assert ticket.id is not None
    # A random id, not one derived from the ticket number: two deployments posting to one helpdesk must
    # never look like retries of each other.
    delivery_id = f"kmt_{uuid.uuid4().hex}"
    uow.outbox.add(
        OutboxMessage(
            delivery_id=delivery_id,
            reason=TICKET_OPENED,
            payload=ticket_summary(uow, ticket),
            conversation_id=ticket.conversation_id,
            user_id=ticket.user_id,
            wallet_id=ticket.wallet_id,
            ticket_id=ticket.id,
            next_attempt_at=now,
            created_at=now,
        )
    )
    uow.flush()
    # Counted here, where every opening passes (a rolled-back transaction would count once too many: rare,
    # and the database's own count is exposed as `keymedic_tickets` by the web app).
    metrics.record_ticket_opened(ticket.reason)
    return delivery_id


def _append_history(payload: dict[str, Any], *, action: str, by: str, at: datetime, **extra: Any) -> None:
    history = list(payload.get("history") or [])
    history.append({"action": action, "by": by, "at": at.isoformat(), **extra})
    payload["history"] = history[-MAX_HISTORY:]


def _locked(uow: AbstractUnitOfWork, ticket_id: int) -> Ticket:
    ticket = uow.tickets.lock(ticket_id)
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist")
    return ticket


def record_transcript(
    uow: AbstractUnitOfWork,
    conversation_id: str,
    events: Iterable[Mapping[str, Any]],
    redact: Redactor,
    *,
    now: datetime | None = None,
) -> int:
    """Add the user and bot turns of `events` to the conversation's ticket, redacted (turns already there are
    kept once). Commits; returns how many turns the transcript holds. Raises `TicketNotFound`."""
    now = now or utcnow()
    turns = transcript_turns(events, redact)  # before the transaction: redaction may be slow
    with uow:
        found = uow.tickets.by_conversation(conversation_id)
        if found is None or found.id is None:
            raise TicketNotFound(f"conversation {conversation_id!r} has no ticket")
        ticket = _locked(uow, found.id)
        payload = _copy(ticket.payload)
        merged = merge_turns(payload.get("transcript") or [], turns)
        if merged != payload.get("transcript"):
            payload["transcript"] = merged
            ticket.payload = payload
            ticket.updated_at = now
        uow.commit()
        return len(merged)


def ticket_view(uow: AbstractUnitOfWork, ticket_id: int) -> dict[str, Any]:
    """Everything an agent reads: the ticket, its transcript, and how its notifications are doing."""
    with uow:
        ticket = uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"ticket {ticket_id} does not exist")
        payload = ticket.payload
        summary = ticket_summary(uow, ticket)
        deliveries = [
            {
                "delivery_id": message.delivery_id,
                "status": message.status,
                "attempts": message.attempts,
                "next_attempt_at": _iso(message.next_attempt_at) if message.status != "delivered" else None,
                "last_error": message.last_error,
                "delivered_at": _iso(message.delivered_at),
            }
            for message in uow.outbox.for_ticket(ticket_id)
        ]
        return {
            "id": ticket.id,
            "conversation_id": ticket.conversation_id,
            "status": ticket.status,
            "bot_paused": bool(payload.get("bot_paused")),
            "reason": ticket.reason,
            "reasons": summary["reasons"],
            "channel": payload.get("channel"),
            "user": summary["user"],
            "wallet": summary["wallet"],
            "diagnosis": payload.get("diagnosis"),
            "checklist": dict(payload.get("checklist") or {}),
            "edits_at_stake": payload.get("removal_impact"),
            "transcript": list(payload.get("transcript") or []),
            "removal_approval": {
                "approved": ticket.removal_approved_at is not None,
                "by": ticket.removal_approved_by,
                "at": _iso(ticket.removal_approved_at),
            },
            "history": list(payload.get("history") or []),
            "notifications": deliveries,
            "created_at": _iso(ticket.created_at),
            "updated_at": _iso(ticket.updated_at),
        }


def record_agent_action(
    uow: AbstractUnitOfWork,
    ticket_id: int,
    *,
    agent: str,
    action: str,
    now: datetime | None = None,
    require_open: bool = True,
    **details: Any,
) -> None:
    """Note on the ticket what an agent did (`reply`, `resume`), who and when. Commits. `resume` also marks
    the bot as answering again. Raises `TicketNotFound`, and `TicketClosed` when `require_open`."""
    now = now or utcnow()
    with uow:
        ticket = _locked(uow, ticket_id)
        if require_open and ticket.status == CLOSED:
            raise TicketClosed(f"ticket {ticket_id} is closed")
        payload = _copy(ticket.payload)
        _append_history(payload, action=action, by=agent, at=now, **details)
        if action == "resume":
            payload["bot_paused"] = False
        ticket.payload = payload
        ticket.updated_at = now
        uow.commit()


def ensure_open(uow: AbstractUnitOfWork, ticket_id: int) -> str:
    """The conversation id of an open ticket. Raises `TicketNotFound`, `TicketClosed`."""
    with uow:
        ticket = uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"ticket {ticket_id} does not exist")
        if ticket.status == CLOSED:
            raise TicketClosed(f"ticket {ticket_id} is closed")
        return ticket.conversation_id


def conversation_of(uow: AbstractUnitOfWork, ticket_id: int) -> str:
    """The conversation id of a ticket, open or closed. Raises `TicketNotFound`."""
    with uow:
        ticket = uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"ticket {ticket_id} does not exist")
        return ticket.conversation_id


def approve_removal(
    uow: AbstractUnitOfWork, ticket_id: int, *, agent: str, now: datetime | None = None
) -> tuple[str, datetime]:
    """Record that support approved removing the ticket's exchange connection: who and when. Only the agent
    API calls this. Approving twice keeps the first approval. Commits; returns (by, at).
    Raises `TicketNotFound`, `TicketClosed`."""
    now = now or utcnow()
    with uow:
        ticket = _locked(uow, ticket_id)
        if ticket.removal_approved_at is not None and ticket.removal_approved_by is not None:
            return ticket.removal_approved_by, ticket.removal_approved_at
        if ticket.status == CLOSED:
            raise TicketClosed(f"ticket {ticket_id} is closed")
        ticket.removal_approved_at = now
        ticket.removal_approved_by = agent
        payload = _copy(ticket.payload)
        _append_history(payload, action="approve_removal", by=agent, at=now)
        ticket.payload = payload
        ticket.updated_at = now
        uow.commit()
        return agent, now


def close_ticket(uow: AbstractUnitOfWork, ticket_id: int, *, agent: str, now: datetime | None = None) -> bool:
    """Close a ticket (the conversation keeps it: a later hand-off reopens it). Commits; False when it was
    closed already. Raises `TicketNotFound`."""
    now = now or utcnow()
    with uow:
        ticket = _locked(uow, ticket_id)
        if ticket.status == CLOSED:
            return False
        ticket.status = CLOSED
        payload = _copy(ticket.payload)
        _append_history(payload, action="close", by=agent, at=now)
        ticket.payload = payload
        ticket.updated_at = now
        uow.commit()
        return True


def removal_approved(uow: AbstractUnitOfWork, conversation_id: str) -> bool:
    """Whether support approved removing the exchange connection in this conversation's ticket. The removal
    walk-through reads this record, never anything the conversation claims (slots, user text)."""
    with uow:
        ticket = uow.tickets.by_conversation(conversation_id)
        return ticket is not None and ticket.removal_approved_at is not None
