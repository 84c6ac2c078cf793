"""The hand-off transcript is the whole conversation even though an action only sees the last turns
(rasa_plugins/tracker_store.py): the desk adds the history Rasa stores, and never fails without it."""

from __future__ import annotations

from typing import Any

import pytest

from bot.handoff.desk import HandoffDesk
from bot.handoff.rasa import RasaUnavailable

from .conftest import Tickets

pytestmark = pytest.mark.integration

STORED = [
    {"event": "user", "text": "hi", "timestamp": 1.0},
    {"event": "bot", "text": "Hi, I'm KeyMedic.", "timestamp": 2.0},
    {"event": "user", "text": "my kraken key broke", "timestamp": 3.0},
    {"event": "bot", "text": "Let's make a new one.", "timestamp": 4.0},
]
# What the action gets: the window (a turn Rasa also stores) and the turn in progress (not stored yet).
WINDOW = [*STORED[2:], {"event": "user", "text": "I want a person", "timestamp": 5.0}]


async def test_the_transcript_has_the_stored_history_and_the_turn_in_progress_once(
    tickets: Tickets, uow_factory: Any
) -> None:
    asked: list[str] = []

    async def history(conversation_id: str) -> list[dict[str, Any]]:
        asked.append(conversation_id)
        return [dict(event) for event in STORED]

    await tickets.open("conv-h")
    desk = HandoffDesk(uow_factory=uow_factory, history=history)
    assert await desk.record_transcript("conv-h", WINDOW) == 5
    assert asked == ["conv-h"]
    uow = uow_factory()
    with uow:
        ticket = uow.tickets.by_conversation("conv-h")
        assert ticket is not None
        texts = [turn["text"] for turn in ticket.payload["transcript"]]
    assert texts == [str(event["text"]) for event in STORED] + ["I want a person"]


async def test_without_rasa_the_transcript_keeps_the_window(tickets: Tickets, uow_factory: Any) -> None:
    async def unavailable(conversation_id: str) -> list[dict[str, Any]]:
        raise RasaUnavailable("Rasa did not answer (ConnectError)")

    await tickets.open("conv-u")
    desk = HandoffDesk(uow_factory=uow_factory, history=unavailable)
    assert await desk.record_transcript("conv-u", WINDOW) == 3
