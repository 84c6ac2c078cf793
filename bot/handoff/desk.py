"""`HandoffDesk`: the hand-off's use cases for the Rasa actions, async, with the database work in a thread
(the action server is one event loop serving every conversation), like `bot.assistant.SupportDesk`.

    desk = HandoffDesk()
    await desk.record_transcript(tracker.sender_id, tracker.events)   # at the hand-off
    if await desk.removal_approved(tracker.sender_id): ...            # before any removal walk-through
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from bot.config import Settings, load_settings
from bot.handoff import services
from bot.handoff.transcript import Redactor, load_redactor

if TYPE_CHECKING:
    from bot.store.db import Database
    from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["HandoffDesk"]


class HandoffDesk:
    """Collaborators default to the real ones (settings, database, `bot.redaction`); tests pass fakes."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        uow_factory: Callable[[], AbstractUnitOfWork] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self._settings = settings
        self._uow_factory = uow_factory
        self._redactor = redactor
        self._database: Database | None = None

    def _uow(self) -> AbstractUnitOfWork:
        # Built on first use: rasa_sdk instantiates every action (and so its desk) at import time.
        if self._uow_factory is not None:
            return self._uow_factory()
        from bot.store.crypto import load_key_ring
        from bot.store.db import create_database
        from bot.store.unit_of_work import SqlAlchemyUnitOfWork

        settings = self._settings or load_settings()
        if self._database is None:
            self._database = create_database(settings.database_url)
        return SqlAlchemyUnitOfWork(self._database, load_key_ring(settings))

    @property
    def redactor(self) -> Redactor:
        if self._redactor is None:
            self._redactor = load_redactor()
        return self._redactor

    async def record_transcript(self, conversation_id: str, events: Iterable[Mapping[str, Any]]) -> int:
        """Add the conversation's user and bot turns, redacted, to its ticket; returns the transcript's
        length. Raises `TicketNotFound` when the conversation has no ticket."""
        snapshot = [dict(event) for event in events]
        return await asyncio.to_thread(
            services.record_transcript, self._uow(), conversation_id, snapshot, self.redactor
        )

    async def removal_approved(self, conversation_id: str) -> bool:
        """Whether an agent approved removal on this conversation's ticket."""
        return await asyncio.to_thread(services.removal_approved, self._uow(), conversation_id)
