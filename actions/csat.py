"""CSAT (issue 16): records the user's 1-5 rating in the conversation (the `csat_rating` slot), or asks again.
Thin: the reading of the number is `bot.csat.parse_rating`'s."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.csat import SLOT, parse_rating


class ActionRecordCsat(Action):
    def name(self) -> str:
        return "action_record_csat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        entity = next(
            (e.get("value") for e in message.get("entities") or [] if e.get("entity") == SLOT), None
        )
        rating = parse_rating(entity, message.get("text"))
        if rating is None:
            dispatcher.utter_message(response="utter_csat_retry")
            return []
        dispatcher.utter_message(response="utter_csat_thanks", csat_rating=str(rating))
        return [SlotSet(SLOT, str(rating))]
