"""`HandoffDesk`, what the Rasa actions call: the redacted transcript, and the removal check."""

from __future__ import annotations

from typing import Any

import pytest

from bot.handoff.desk import HandoffDesk
from bot.handoff.services import TicketNotFound, approve_removal
from bot.handoff.transcript import Redaction

from .conftest import Tickets

pytestmark = pytest.mark.integration


def placeholder_redact(text: str) -> Redaction:
    """Stands in for `bot.redaction`: the word after "key" is a secret."""
    words = text.split(" ")
    for n, word in enumerate(words[:-1]):
        if word == "key":
            words[n + 1] = "[redacted]"
            return Redaction(" ".join(words), ("api_key",))
    return Redaction(text, ())


async def test_the_hand_off_records_the_transcript_redacted_and_once(
    tickets: Tickets, uow_factory: Any
) -> None:
    desk = HandoffDesk(uow_factory=uow_factory, redactor=placeholder_redact)
    await tickets.open("conv-1")
    events = [
        {"event": "user", "text": "my key AKIA1234567890ABCDEF broke", "timestamp": 1.0},
        {"event": "bot", "text": "Let's test it.", "timestamp": 2.0},
    ]
    assert await desk.record_transcript("conv-1", events) == 2
    assert (
        await desk.record_transcript("conv-1", events + [{"event": "user", "text": "hello?", "timestamp": 3}])
        == 3
    )
    uow = uow_factory()
    with uow:
        ticket = uow.tickets.by_conversation("conv-1")
        assert ticket is not None
        assert ticket.payload["transcript"][0]["text"] == "my key [redacted] broke"
        assert "AKIA1234567890ABCDEF" not in str(ticket.payload)
    with pytest.raises(TicketNotFound):
        await desk.record_transcript("no-ticket-here", events)


async def test_removal_is_approved_only_once_an_agent_approved_it(tickets: Tickets, uow_factory: Any) -> None:
    desk = HandoffDesk(uow_factory=uow_factory)
    assert await desk.removal_approved("conv-1") is False  # no ticket at all
    ticket_id = await tickets.open("conv-1")
    assert await desk.removal_approved("conv-1") is False
    approve_removal(uow_factory(), ticket_id, agent="sam")
    assert await desk.removal_approved("conv-1") is True
    assert await desk.removal_approved("conv-2") is False
