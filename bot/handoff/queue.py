"""The support queue (issue 16): the open tickets an agent console lists, the longest-waiting first.

A ticket waits since it was opened, or since its latest reopening (a hand-off on a closed ticket reopens it:
`services.ticket_opened` notes that in its history). The queue carries no transcript and no diagnosis
detail: those are read per ticket (`services.ticket_view`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.store.model import Ticket
from bot.store.orm import tickets
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["waiting_since", "open_queue"]

MAX_QUEUE = 500


def waiting_since(ticket: Ticket) -> datetime:
    for entry in reversed(ticket.payload.get("history") or []):
        if entry.get("action") == "reopened":
            try:
                return datetime.fromisoformat(str(entry["at"]))
            except (KeyError, ValueError):
                break
    return ticket.created_at


def open_queue(uow: AbstractUnitOfWork, *, now: datetime) -> list[dict[str, Any]]:
    """The open tickets, longest-waiting first: who, which exchange, why, since when, and whether the bot
    is paused."""
    with uow:
        session = uow.session  # type: ignore[attr-defined]  # a SQL query: SqlAlchemyUnitOfWork only
        rows = list(
            session.scalars(
                select(Ticket).where(tickets.c.status == "open").order_by(tickets.c.id).limit(MAX_QUEUE)
            )
        )
        entries = []
        for ticket in rows:
            user = uow.users.get(ticket.user_id) if ticket.user_id is not None else None
            wallet = uow.wallets.get(ticket.wallet_id) if ticket.wallet_id is not None else None
            since = waiting_since(ticket)
            entries.append(
                {
                    "id": ticket.id,
                    "user": (user.display_name or user.handle) if user else None,
                    "exchange": wallet.exchange if wallet else None,
                    "reason": ticket.reason,
                    "waiting_since": since.isoformat(),
                    "waiting_s": max(0, int((now - since).total_seconds())),
                    "bot_paused": bool(ticket.payload.get("bot_paused")),
                    "updated_at": ticket.updated_at.isoformat(),
                }
            )
    entries.sort(key=lambda entry: (entry["waiting_since"], entry["id"]))
    return entries
