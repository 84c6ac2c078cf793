"""`HandoffDesk`: the hand-off's use cases for the Rasa actions, async, with the database work in a thread
(the action server is one event loop serving every conversation), like `bot.assistant.SupportDesk`.

    desk = HandoffDesk()
    await desk.record_transcript(tracker.sender_id, tracker.events)   # at the hand-off
    if await desk.removal_approved(tracker.sender_id): ...            # before any removal walk-through

The tracker an action receives is a window of the conversation's last turns (rasa_plugins/tracker_store.py),
so a desk given `history` (the action server's, `rasa_history`) adds the whole conversation as Rasa stores it
to the transcript; the window still brings the turn in progress, which Rasa has not stored yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from bot.config import Settings, load_settings
from bot.handoff import services
from bot.handoff.transcript import Redactor, load_redactor

if TYPE_CHECKING:
    from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["HandoffDesk", "History", "rasa_history"]

logger = logging.getLogger(__name__)

# A conversation's stored events, oldest first.
History = Callable[[str], Awaitable[list[dict[str, Any]]]]

# The hand-off action waits for this; Rasa's action call times out after 10 s (rasa/core/actions/action.py).
HISTORY_TIMEOUT_S = 3.0


def rasa_history(settings: Settings) -> History:
    """Every stored event of a conversation, from Rasa's `GET /conversations/<id>/tracker` (which reads the
    full tracker, not the window)."""
    from bot.handoff.rasa import RasaConversations

    async def history(conversation_id: str) -> list[dict[str, Any]]:
        rasa = RasaConversations(
            settings.rasa_base_url, token=settings.rasa_token, timeout_s=HISTORY_TIMEOUT_S
        )
        try:
            return await rasa.events(conversation_id)
        finally:
            await rasa.aclose()

    return history


class HandoffDesk:
    """Collaborators default to the real ones (settings, database, `bot.redaction`); tests pass fakes."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        uow_factory: Callable[[], AbstractUnitOfWork] | None = None,
        redactor: Redactor | None = None,
        history: History | None = None,
    ) -> None:
        self._settings = settings
        self._uow_factory = uow_factory
        self._redactor = redactor
        self._history = history

    def _uow(self) -> AbstractUnitOfWork:
        # Built on first use: rasa_sdk instantiates every action (and so its desk) at import time.
        if self._uow_factory is not None:
            return self._uow_factory()
        # One engine and one cached key ring per process, shared with the support desk.
        from bot.store.unit_of_work import shared_uow_factory

        return shared_uow_factory(self._settings or load_settings())()

    @property
    def redactor(self) -> Redactor:
        if self._redactor is None:
            self._redactor = load_redactor()
        return self._redactor

    async def record_transcript(self, conversation_id: str, events: Iterable[Mapping[str, Any]]) -> int:
        """Add the conversation's user and bot turns, redacted, to its ticket; returns the transcript's
        length. Raises `TicketNotFound` when the conversation has no ticket."""
        snapshot = [dict(event) for event in events]
        if self._history is not None:
            snapshot = await self._with_history(conversation_id, snapshot)
        return await asyncio.to_thread(
            services.record_transcript, self._uow(), conversation_id, snapshot, self.redactor
        )

    async def _with_history(self, conversation_id: str, window: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Stored history first, then the window; a turn in both is kept once (merge_turns keys on role, time
        # and text). Without Rasa the ticket still gets the window: a hand-off must not fail for a transcript.
        from bot.handoff.rasa import RasaError

        assert self._history is not None
        try:
            stored = await self._history(conversation_id)
        except RasaError as error:
            logger.warning("hand-off transcript: only the recent turns (%s)", type(error).__name__)
            return window
        return [*stored, *window]

    async def removal_approved(self, conversation_id: str) -> bool:
        """Whether an agent approved removal on this conversation's ticket."""
        return await asyncio.to_thread(services.removal_approved, self._uow(), conversation_id)
