"""Hand-off to a person: record everything KeyMedic learned on the conversation's ticket."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.checklist import CHECKLIST_SLOTS
from actions.common import DeskAction, channel_of, shared_handoff, wallet_id_of
from bot.assistant import SupportDesk
from bot.handoff.desk import HandoffDesk


class ActionHandoffToSupport(DeskAction):
    """Opens (or reuses) the conversation's ticket with everything learned, then pauses the bot until an
    agent resumes it (DESIGN §6)."""

    def __init__(self, desk: SupportDesk | None = None, handoff: HandoffDesk | None = None) -> None:
        super().__init__(desk)
        self._handoff = handoff

    def name(self) -> str:
        return "action_handoff_to_support"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = self.desk
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = "user asked for a person" if intent == "request_human" else "key still failing after checks"
        answers = {
            slot: tracker.get_slot(slot)
            for slot in CHECKLIST_SLOTS.values()
            if tracker.get_slot(slot) is not None
        }
        ticket_id = await desk.open_ticket(
            channel_of(tracker),
            tracker.sender_id,
            tracker.sender_id,
            reason=reason,
            wallet_id=wallet_id_of(tracker),
            checklist=answers,
        )
        handoff = self._handoff or shared_handoff()
        await handoff.record_transcript(tracker.sender_id, tracker.events)
        dispatcher.utter_message(
            text=(
                f"I've passed this to our support team (ticket #{ticket_id}) with everything we've found so "
                "far, so you won't have to repeat yourself. A person will reply right here; until then I'll "
                "stay quiet, and anything you write goes to them."
            )
        )
        # The form ends here, not in a later action: once paused, Rasa predicts nothing more this turn.
        return [
            SlotSet("ticket_id", str(ticket_id)),
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            ConversationPaused(),
        ]
