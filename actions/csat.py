"""CSAT (issue 16): records the user's 1-5 rating in the conversation (the `csat_rating` slot), or asks again.
Thin: the reading of the number is `bot.csat`'s.

A button is always an answer (only the rating question carries them). A typed rating (read by
rasa_plugins/typed_ratings.py) answers only when the bot's last message was the rating question: a bare "2"
elsewhere answers something else ("which connection?"), so nothing is recorded and the form, if one is
going, asks its own question again (data/rules/csat.yml).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.csat import RETRY, SLOT, offers_rating, parse_rating, rating_buttons


def _rating_was_asked_last(tracker: Tracker) -> bool:
    """Whether the bot's last message before this one offered the rating buttons."""
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            return offers_rating((event.get("data") or {}).get("buttons"))
    return False


class ActionRecordCsat(Action):
    def name(self) -> str:
        return "action_record_csat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        text = str(message.get("text") or "")
        # A button's payload (or one typed by hand: the user's own rating either way, checked below).
        clicked = text.startswith("/")
        if not clicked and not _rating_was_asked_last(tracker):
            if not (tracker.active_loop or {}).get("name"):
                dispatcher.utter_message(response="utter_default")
            return []
        entity = next(
            (e.get("value") for e in message.get("entities") or [] if e.get("entity") == SLOT), None
        )
        rating = parse_rating(entity, text)
        if rating is None:
            dispatcher.utter_message(text=RETRY, buttons=rating_buttons())
            return []
        dispatcher.utter_message(response="utter_csat_thanks", csat_rating=str(rating))
        return [SlotSet(SLOT, str(rating))]
