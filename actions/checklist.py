"""The checklist of the article, asking only what the live test could not settle (all of it for an exchange
without a live check), in the article's order; it ends with the fix or with the hand-off."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import DeskAction, channel_of, wallet_id_of
from actions.key_update import sync_check_reminder
from bot.assistant.replies import checklist_fix, sync_started_reply
from bot.exchange_ids import normalize_exchange
from bot.knowledge import CHECKLIST_ORDER, checklist_questions, guide_for
from bot.store.services import DiagnosisNotPassed, NotFound, PendingCredentialInvalid
from bot.types.diagnosis import Item

# One yes/no slot per checklist question, named after the first item the question settles.
CHECKLIST_SLOTS: dict[Item, str] = {group[0]: f"checklist_{group[0].value}" for group in CHECKLIST_ORDER}
_GROUP_OF: dict[Item, Item] = {item: group[0] for group in CHECKLIST_ORDER for item in group}
_YES_NO = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]


def _exchange(tracker: Tracker) -> str | None:
    return normalize_exchange(tracker.get_slot("exchange"))


def _open_items(tracker: Tracker) -> list[Item]:
    """The items to ask about: those the live test left unknown, or every item when there was no live test."""
    unknown = tracker.get_slot("unknown_items") or []
    items = [Item(value) for value in unknown if value in Item._value2member_map_]
    return items or list(Item)


def checklist_slots_to_ask(tracker: Tracker) -> list[str]:
    """Slot names of the questions to ask, in the article's order, skipping questions that do not apply."""
    exchange = _exchange(tracker)
    if exchange is None:
        heads = {_GROUP_OF[item] for item in _open_items(tracker)} - {Item.PASSPHRASE_OK}
        return [CHECKLIST_SLOTS[group[0]] for group in CHECKLIST_ORDER if group[0] in heads]
    questions = checklist_questions(guide_for(exchange), _open_items(tracker))
    return [CHECKLIST_SLOTS[_GROUP_OF[q.items[0]]] for q in questions]


class ValidateChecklistForm(FormValidationAction):
    def name(self) -> str:
        return "validate_checklist_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        return checklist_slots_to_ask(tracker)


class _AskChecklistQuestion(Action, ABC):
    """Asks one checklist question, in the words of the user's exchange. The form looks for an action named
    `action_ask_<slot>` per slot, so one subclass per question is made below."""

    head: Item

    def name(self) -> str:
        return f"action_ask_{CHECKLIST_SLOTS[self.head]}"

    @abstractmethod
    def _abstract_marker(self) -> None:
        """Keeps this base out of rasa_sdk's registry (it skips abstract classes)."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        head = self.head
        exchange = _exchange(tracker)
        text = None
        if exchange is not None:
            questions = checklist_questions(guide_for(exchange), [head])
            text = questions[0].text if questions else None
        dispatcher.utter_message(text=text or _GENERIC_QUESTIONS[head], buttons=_YES_NO)
        return []


_GENERIC_QUESTIONS: dict[Item, str] = {
    Item.FORMAT: "Did you copy the full key and secret, with no extra spaces?",
    Item.PASSPHRASE_OK: "Does the passphrase match exactly what you set on the exchange?",
    Item.READ_PERMISSION: "Is read access turned on for the key?",
    Item.NO_TRADE_OR_WITHDRAW: "Are withdrawal and trading permissions left off?",
    Item.ACTIVATED: "Is the key active? Some exchanges need an email or 2FA confirmation first.",
    Item.NO_IP_RESTRICTION: "Is the key free of IP restrictions?",
    Item.HAS_ACTIVITY: "Does the exchange account have at least one transaction?",
}


def _ask_action(head: Item) -> type[_AskChecklistQuestion]:
    def _abstract_marker(self: _AskChecklistQuestion) -> None:
        return None

    name = "ActionAsk" + "".join(part.title() for part in CHECKLIST_SLOTS[head].split("_"))
    return type(name, (_AskChecklistQuestion,), {"head": head, "_abstract_marker": _abstract_marker})


ASK_ACTIONS = {head: _ask_action(head) for head in CHECKLIST_SLOTS}


class ActionChecklistResult(DeskAction):
    """Each "no" gets its fix. When everything checks out after a live test that left only items the user may
    vouch for, the tested key is saved and resynced (`SupportDesk.update_confirmed_key`; the recorded test
    decides, not these slots); otherwise support takes over (the article's last step)."""

    def name(self) -> str:
        return "action_checklist_result"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        exchange = _exchange(tracker)
        guide = guide_for(exchange) if exchange else None
        name = guide.name if guide else "the exchange"
        key_label = guide.labels.key if guide else "key"
        secret_label = guide.labels.secret if guide else "secret"
        answered: dict[str, Any] = {slot: tracker.get_slot(slot) for slot in checklist_slots_to_ask(tracker)}
        noes = [item for item, slot in CHECKLIST_SLOTS.items() if answered.get(slot) is False]
        if noes:
            fixes = [
                checklist_fix(item, name=name, key_label=key_label, secret_label=secret_label)
                for item in noes
            ]
            dispatcher.utter_message(
                text="That's likely it. Here's what to do:\n" + "\n".join(f"• {f}" for f in fixes)
            )
            return [SlotSet("checklist_outcome", "fix_found")]
        saved = await self._save_confirmed_key(dispatcher, tracker, answered)
        if saved is not None:
            return saved
        dispatcher.utter_message(
            text=(
                "Everything on the checklist checks out, so this needs a closer look from our support team "
                "before anything else, and certainly before removing the exchange."
            )
        )
        return [SlotSet("checklist_outcome", "all_clear")]

    async def _save_confirmed_key(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, answered: dict[str, Any]
    ) -> list[EventType] | None:
        """Save the key the live test left open, now that the user confirmed every open item; None when
        there is no such key (no live test, nothing pending) or the desk refuses it — then support takes
        over as before."""
        unknown = tracker.get_slot("unknown_items") or []
        reference = tracker.get_slot("credential_ref")
        wallet_id = wallet_id_of(tracker)
        if (
            tracker.get_slot("key_status") != "unknown_items"
            or not unknown
            or not reference
            or wallet_id is None
        ):
            return None
        confirmed = [
            item for item in _open_items(tracker) if answered.get(CHECKLIST_SLOTS[_GROUP_OF[item]]) is True
        ]
        try:
            updated = await self.desk.update_confirmed_key(
                channel_of(tracker),
                tracker.sender_id,
                tracker.sender_id,
                wallet_id,
                str(reference),
                confirmed,
            )
        except (DiagnosisNotPassed, PendingCredentialInvalid, NotFound):
            return None
        dispatcher.utter_message(
            text=sync_started_reply(str(tracker.get_slot("exchange")), updated.masked_key)
        )
        return [
            SlotSet("checklist_outcome", "key_saved"),
            SlotSet("sync_run_id", str(updated.sync_run_id)),
            SlotSet("credential_ref", None),
            sync_check_reminder(updated.sync_run_id, attempt=1),
        ]
