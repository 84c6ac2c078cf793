"""The removal guardrail: before removal is even discussed, the user hears exactly what it would delete."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import DeskAction, channel_of, exchange_of, shared_handoff, wallet_id_of
from bot.assistant import SupportDesk
from bot.assistant.replies import removal_impact_reply, removal_walkthrough_reply, removal_warning_reply
from bot.handoff.desk import HandoffDesk

_SUPPORT_BUTTONS = [
    {"title": "Talk to support", "payload": "/request_human"},
    {"title": "Try a new key instead", "payload": "/update_key"},
]


class ActionRemovalImpact(DeskAction):
    """Counts the manual edits removal would delete, warns, and offers support — never removal steps."""

    def __init__(self, desk: SupportDesk | None = None, handoff: HandoffDesk | None = None) -> None:
        super().__init__(desk)
        self._handoff = handoff

    def name(self) -> str:
        return "action_removal_impact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = self.desk
        channel = channel_of(tracker)
        exchange = exchange_of(tracker)
        wallets = await desk.wallets(channel, tracker.sender_id)
        wallet_id = wallet_id_of(tracker)
        # The exchange named in this message wins over the wallet the conversation was about.
        candidates = [w for w in wallets if w.wallet_id == wallet_id and exchange in (None, w.exchange)] or [
            w for w in wallets if exchange is not None and w.exchange == exchange
        ]
        if len(candidates) != 1:
            # Without knowing which wallet, give the article's warning in general terms.
            dispatcher.utter_message(text=removal_warning_reply(), buttons=_SUPPORT_BUTTONS)
            return []
        wallet = candidates[0]
        # Remember which wallet this is about: a hand-off that follows carries its edits at stake. Not in the
        # middle of a form, whose wallet is the one the user is fixing.
        remembered: list[EventType] = (
            []
            if tracker.active_loop.get("name")
            else [SlotSet("exchange", wallet.exchange), SlotSet("wallet_id", str(wallet.wallet_id))]
        )
        impact = await desk.removal_impact(channel, tracker.sender_id, wallet.wallet_id)
        handoff = self._handoff or shared_handoff()
        if await handoff.removal_approved(tracker.sender_id):
            # Only an agent can approve removal on the ticket; only then are there steps to give.
            dispatcher.utter_message(text=removal_walkthrough_reply(wallet.exchange, impact))
            return remembered
        dispatcher.utter_message(text=removal_impact_reply(wallet.exchange, impact), buttons=_SUPPORT_BUTTONS)
        return remembered
