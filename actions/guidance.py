"""Answers that depend on the user's exchange: the CSV backup, and the new-key steps."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import exchange_of
from bot.assistant.replies import csv_backup_reply
from bot.knowledge import csv_backup_steps, guide_for


class ActionCsvBackup(Action):
    def name(self) -> str:
        return "action_csv_backup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        exchange = exchange_of(tracker)
        if exchange is None:
            dispatcher.utter_message(text=csv_backup_reply())
            return []
        dispatcher.utter_message(text=" ".join(csv_backup_steps(guide_for(exchange))))
        return []
