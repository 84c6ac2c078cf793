"""The key update: the form that finds the wallet and takes the new key through the secure form, the live
test (`action_check_api_key`) and the swap with its resync (`action_update_credentials`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, ReminderScheduled, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import DeskAction, channel_of, exchange_of, inform_payload, shared_desk, wallet_id_of
from bot import csat
from bot.assistant import SupportDesk
from bot.assistant.replies import (
    exchange_title,
    key_check_reply,
    needs_checklist,
    sync_report_reply,
    sync_started_reply,
)
from bot.diagnosis.errors import DiagnosisRateLimited, UnsupportedExchange
from bot.exchange_ids import ExchangeId, display_name, normalize_exchange
from bot.exchange_mentions import intended_exchange
from bot.intake import CREDENTIAL_FORM_TYPE
from bot.knowledge import answer, api_page_link, guide_for, new_key_steps, topic_for_intent
from bot.side_questions import SideTopic, side_questions
from bot.store.services import DiagnosisNotPassed, NotFound, PendingCredentialInvalid

# How often, and for how long, the bot looks in on a resync it started to tell the user how it went.
SYNC_CHECK_EVERY = timedelta(seconds=5)
SYNC_CHECK_MAX = 24  # two minutes; after that the user asks, or the next key conversation tells them

# An intake reference as bot/store/services.py makes it: "pc_" and URL-safe base64, which may end in "-".
# Rasa's WhitespaceTokenizer strips punctuation from the end of a word, so the NLU entity of a typed
# `pc_…-` loses its last character; the reference is read from the message text instead.
_REFERENCE = re.compile(r"(?<![A-Za-z0-9_-])pc_[A-Za-z0-9_-]+")


# The triggers that start the key update (data/rules/key_update.yml), and the answer to each side question.
_TRIGGERS = frozenset({"sync_stopped", "invalid_key_error", "key_revoked", "security_changed", "update_key"})
# Each side question is the contract question of the same name; its answer comes from the knowledge base,
# for the exchange the message or the form names (bot/knowledge/faq.yml), as `action_answer_faq` gives it.
_SIDE_QUESTIONS: dict[SideTopic, str] = {
    SideTopic.PASSPHRASE: "ask_passphrase",
    SideTopic.PERMISSIONS: "ask_permissions",
    SideTopic.IP_WHITELIST: "ask_ip_whitelist",
    SideTopic.ACTIVATION: "ask_key_activation",
}


_EXPLANATIONS = frozenset(
    {
        "utter_explain_broken_key",
        "utter_explain_revoked",
        "utter_explain_security_change",
        "utter_explain_replace",
    }
)


def answer_side_questions(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """Answer the questions asked beside the trigger that (re)started the form ("my key stopped working, do
    I need a passphrase?"), before the form's next question.

    The form's ask actions call this: exactly one of them runs per run of the form, while Rasa runs the
    validation action twice as the form starts, so an answer there would come twice. Only a run that follows
    the trigger's explanation in this turn answers: the form's start, or a trigger said while it was already
    running; later questions of the form (after a side question, a "thanks") say nothing more."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent not in _TRIGGERS or not _explained_this_turn(tracker):
        return
    exchange = exchange_of(tracker)
    for side in side_questions(str(tracker.latest_message.get("text") or ""), besides=intent):
        topic = topic_for_intent(_SIDE_QUESTIONS[side])
        if topic is not None:
            dispatcher.utter_message(text=answer(topic, exchange))


class ActionAskExchange(DeskAction):
    def name(self) -> str:
        return "action_ask_exchange"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        answer_side_questions(dispatcher, tracker)
        suggestion = _suggested_this_turn(tracker)
        if suggestion is not None:
            # A misspelt name the form was unsure of (validate_exchange): a typed yes or no answers it too.
            dispatcher.utter_message(
                text=f"Did you mean {display_name(suggestion)}?",
                buttons=[
                    {"title": f"Yes, {display_name(suggestion)}", "payload": "/affirm"},
                    {"title": "No", "payload": "/deny"},
                ],
            )
            return []
        desk = self.desk
        wallets = await desk.wallets(channel_of(tracker), tracker.sender_id)
        exchanges = list(dict.fromkeys(w.exchange for w in wallets))
        buttons = [{"title": exchange_title(e), "payload": inform_payload(exchange=e)} for e in exchanges]
        text = "Which exchange is it?" + (" Pick one of yours, or type its name." if buttons else "")
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


class ActionAskWalletId(DeskAction):
    def name(self) -> str:
        return "action_ask_wallet_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        answer_side_questions(dispatcher, tracker)
        desk = self.desk
        exchange = tracker.get_slot("exchange")
        wallets = [
            w for w in await desk.wallets(channel_of(tracker), tracker.sender_id) if w.exchange == exchange
        ]
        buttons = [
            {
                "title": f"{w.title} {w.masked_key or '(no key yet)'}",
                "payload": inform_payload(wallet_id=w.wallet_id),
            }
            for w in wallets
        ]
        dispatcher.utter_message(
            text=(
                f"You have {len(wallets)} {exchange_title(str(exchange))} connections. "
                "Which one needs the new key?"
            ),
            buttons=buttons,
        )
        return []


class ActionAskCredentialRef(DeskAction):
    """Explain how to make the key on this exchange, then hand over the secure form (never the chat).

    Asked again later in the same form (after a side question, a "thanks"), it only hands over the form: the
    steps are already in the chat above, and repeating the whole list after every question buries the
    answer the user asked for. Another wallet (another exchange's steps) gets the steps again."""

    def name(self) -> str:
        return "action_ask_credential_ref"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        answer_side_questions(dispatcher, tracker)
        desk = self.desk
        exchange = str(tracker.get_slot("exchange"))
        wallet_id = wallet_id_of(tracker)
        if wallet_id is None:
            return [SlotSet("wallet_id", None)]
        try:
            payload = await desk.credential_form(
                channel_of(tracker), tracker.sender_id, tracker.sender_id, wallet_id
            )
        except NotFound:
            # Not this user's wallet (the slot can be typed in): no form, and the form asks again.
            dispatcher.utter_message(text="I couldn't find that connection among your wallets.")
            return [SlotSet("wallet_id", None)]
        guide = guide_for(exchange)
        explained = _form_sent_for(tracker, wallet_id)
        if not explained:
            steps = "\n".join(f"{n}. {step}" for n, step in enumerate(new_key_steps(guide), start=1))
            link = api_page_link(guide)
            dispatcher.utter_message(
                text=f"Here's how to make the new {guide.name} key:\n{steps}",
                buttons=[{"title": link[0], "url": link[1], "type": "web_url"}] if link else [],
            )
        lead = (
            f"Whenever your new {guide.name} key is ready, enter it in the secure form, not in the chat: "
            if explained
            else "When you have it, enter it in this secure form, not in the chat: "
        )
        dispatcher.utter_message(
            text=(
                f"{lead}{payload['form_url']} (the link works once, for 10 minutes). I'll test the key live "
                "before anything changes."
            ),
            json_message=payload,
        )
        return []


def _form_sent_for(tracker: Tracker, wallet_id: int) -> bool:
    """Whether this run of the form already sent the secure form for `wallet_id` (and so its steps).

    Rasa runs a form's ask action inside the form and logs no event of its own for it, only its messages:
    the credential form travels as a bot message's custom payload, which names the wallet."""
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "bot":
            custom = (event.get("data") or {}).get("custom") or {}
            if custom.get("type") == CREDENTIAL_FORM_TYPE and str(custom.get("wallet_id")) == str(wallet_id):
                return True
        if kind == "active_loop" and event.get("name") == "key_update_form":
            return False  # the form started here: nothing was sent in this run before
    return False


class ValidateKeyUpdateForm(FormValidationAction):
    def __init__(self, desk: SupportDesk | None = None) -> None:
        self._desk = desk

    @property
    def desk(self) -> SupportDesk:
        return self._desk or shared_desk()

    def name(self) -> str:
        return "validate_key_update_form"

    async def extract_credential_ref(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The whole `pc_…` reference of the latest message, when it has one (see `_REFERENCE`)."""
        found = _REFERENCE.findall(str(tracker.latest_message.get("text") or ""))
        return {"credential_ref": found[-1]} if found else {}

    async def extract_exchange(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The exchange the user means, read from the whole message (bot/exchange_mentions.py).

        Rasa's entity mapping takes one of the names the message holds, so "I meant my KuCoin wallet, not
        Kraken" could fill Kraken, and a misspelt name ("kucoinn") is no entity at all. An exchange the
        message names with confidence becomes the candidate; a guess, or the answer to "Did you mean …?",
        becomes a `None` candidate that `validate_exchange` turns into the question or its answer."""
        message = tracker.latest_message
        intent = (message.get("intent") or {}).get("name")
        text = str(message.get("text") or "")
        if intent in _not_about_the_wallet(domain) or text.startswith("/"):
            return {}
        suggestion = normalize_exchange(tracker.get_slot("exchange_suggestion"))
        if suggestion is not None and intent == "affirm":
            return {"exchange": suggestion}
        if suggestion is not None and intent == "deny":
            return {"exchange": None}
        before = _slot_before_this_turn(tracker, "exchange")
        candidate = tracker.slots_to_validate().get("exchange")
        resolved = intended_exchange(text, current=before)
        if resolved is None:
            # Every name in it was negated ("not Kraken"): the entity Rasa found is the wrong one.
            return {"exchange": before} if candidate is not None and candidate != before else {}
        if not resolved.confident:
            # A guess is worth a question only while the form has no exchange; otherwise keep the wallet.
            return {"exchange": None} if before is None and candidate is None else {}
        if resolved.exchange != before or (candidate is not None and candidate != resolved.exchange):
            return {"exchange": resolved.exchange}
        return {}

    async def validate_exchange(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            # extract_exchange's `None`: a guess to confirm, or a "no" to the last guess (ask again).
            guess = intended_exchange(str(tracker.latest_message.get("text") or ""))
            asked = guess is not None and not guess.confident
            return {"exchange": None, "exchange_suggestion": guess.exchange if guess and asked else None}
        found = await self._validate_named_exchange(value, dispatcher, tracker)
        if found.get("exchange") and tracker.get_slot("exchange_suggestion") is not None:
            return {**found, "exchange_suggestion": None}  # the guess is settled
        return found

    async def _validate_named_exchange(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        if self._starts_after_a_finished_update(tracker):
            # The last key update ended with a saved key, and this new one names no exchange: it is about
            # another wallet ("my other wallet stopped syncing too"), so ask instead of reusing the old one.
            return {"exchange": None, "wallet_id": None, "credential_ref": None, "key_status": None}
        exchange = normalize_exchange(str(value)) if value else None
        if exchange is None:
            dispatcher.utter_message(
                text="I don't know that exchange. Which one is it (Kraken, Coinbase, …)?"
            )
            return {"exchange": None}
        desk = self.desk
        channel = channel_of(tracker)
        mine = [w for w in await desk.wallets(channel, tracker.sender_id) if w.exchange == exchange]
        current = tracker.get_slot("wallet_id")
        if len(mine) == 1:
            return {"exchange": exchange, **_wallet_switch(current, str(mine[0].wallet_id))}
        if not mine:
            # The article: if the exchange isn't connected yet, add it as a new wallet with the new key.
            wallet = await desk.connect_wallet(channel, tracker.sender_id, exchange)
            dispatcher.utter_message(
                text=f"{exchange_title(exchange)} isn't connected yet: the new key will add it as a wallet."
            )
            return {"exchange": exchange, **_wallet_switch(current, str(wallet.wallet_id))}
        if current is None or any(str(w.wallet_id) == str(current) for w in mine):
            return {"exchange": exchange}
        # Several connections on this exchange, and the wallet slot holds another exchange's: ask which.
        return {"exchange": exchange, **_wallet_switch(current, None)}

    async def validate_wallet_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _replaced_this_turn(tracker, "wallet_id"):
            return {"wallet_id": tracker.get_slot("wallet_id")}  # validate_exchange decided the wallet
        desk = self.desk
        wallets = await desk.wallets(channel_of(tracker), tracker.sender_id)
        chosen = next((w for w in wallets if str(w.wallet_id) == str(value)), None)
        if chosen is None or chosen.exchange != tracker.get_slot("exchange"):
            if _named_in_message(tracker, "wallet_id"):
                dispatcher.utter_message(text="Please pick one of the connections listed.")
            return {"wallet_id": None}
        return {"wallet_id": str(chosen.wallet_id)}

    async def validate_credential_ref(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _replaced_this_turn(tracker, "credential_ref"):
            return {"credential_ref": None}  # dropped with a change of wallet, see validate_exchange
        if not isinstance(value, str) or not value.startswith("pc_"):
            dispatcher.utter_message(
                text="I haven't received a key from the secure form yet. Please use the form, not the chat."
            )
            return {"credential_ref": None}
        return {"credential_ref": value}

    def _starts_after_a_finished_update(self, tracker: Tracker) -> bool:
        return (
            _activated_this_turn(tracker, self.form_name())
            and tracker.get_slot("key_status") == "passed"
            and not _wallet_named_since_last_update(tracker)
        )


def _explained_this_turn(tracker: Tracker) -> bool:
    """Whether a trigger's explanation (data/rules/key_update.yml) was given since the user's message."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") in _EXPLANATIONS:
            return True
    return False


def _suggested_this_turn(tracker: Tracker) -> ExchangeId | None:
    """The exchange `validate_exchange` guessed from the latest message, if it did; a guess left over from an
    earlier turn (the user moved on, or left the form) is not asked about again."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return None
        if event.get("event") == "slot" and event.get("name") == "exchange_suggestion":
            return normalize_exchange(event.get("value"))
    return None


def _not_about_the_wallet(domain: DomainDict) -> set[str]:
    """Intents whose exchange is not the form's answer: the `not_intent` of the `exchange` slot's mapping
    (questions and side requests, domain.yml), and small talk."""
    mappings = domain.get("slots", {}).get("exchange", {}).get("mappings", [])
    questions = {intent for mapping in mappings for intent in mapping.get("not_intent", [])}
    return questions | {"out_of_scope", "thank", "goodbye", "greet", "EXTERNAL_key_failed"}


def _slot_before_this_turn(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the latest user message (Rasa has already put this turn's candidate in)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    # Set before the tracker's window of recent turns (rasa_plugins/tracker_store.py), or never: without a
    # candidate this turn, the slot still holds the earlier value.
    return None if slot in tracker.slots_to_validate() else tracker.get_slot(slot)


def _activated_this_turn(tracker: Tracker, form: str) -> bool:
    """Whether the form started with the latest user message. Slots filled before it started are validated
    as it starts (Rasa's FormAction.activate), and by then Rasa has already set the active loop, so the
    tracker's `active_loop` can't tell: the loop's activation event after the user's message can."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "active_loop" and event.get("name") == form:
            return True
    return False


def _wallet_named_since_last_update(tracker: Tracker) -> bool:
    """Whether anything set the exchange or wallet after the last key was saved: the user naming it, a
    removal question about it, or KeyMedic's own outreach about a failed sync (data/rules/outreach.yml)."""
    events = list(tracker.events)
    while events and events[-1].get("event") == "slot":
        events.pop()  # the form's own candidates for this validation, not something said since
    for event in reversed(events):
        if event.get("event") == "action" and event.get("name") == "action_update_credentials":
            return False
        if (
            event.get("event") == "slot"
            and event.get("name") in ("exchange", "wallet_id")
            and event.get("value") is not None
        ):
            return True
    return True  # no key was saved in this conversation


def _named_in_message(tracker: Tracker, entity: str) -> bool:
    return any(e.get("entity") == entity for e in tracker.latest_message.get("entities") or [])


def _wallet_switch(current: Any, chosen: str | None) -> dict[str, Any]:
    """The wallet slot for `chosen`; a reference from the secure form belongs to one wallet, so moving away
    from another wallet drops the reference too."""
    if current is not None and str(current) != chosen:
        return {"wallet_id": chosen, "credential_ref": None}
    return {"wallet_id": chosen}


def _replaced_this_turn(tracker: Tracker, slot: str) -> bool:
    # rasa_sdk validates this turn's slot candidates one by one, each with its value from before any
    # validator ran; a validator that ran earlier (validate_exchange) may have replaced it since.
    candidates = tracker.slots_to_validate()
    return slot in candidates and tracker.get_slot(slot) != candidates[slot]


class ActionCheckApiKey(DeskAction):
    """Test the submitted key live and say exactly which checklist item fails, with the fix."""

    def name(self) -> str:
        return "action_check_api_key"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = self.desk
        wallet_id = wallet_id_of(tracker)
        reference = tracker.get_slot("credential_ref")
        if wallet_id is None or not reference:
            dispatcher.utter_message(text="I don't have a key to test yet.")
            return [SlotSet("key_status", "invalid_reference"), SlotSet("credential_ref", None)]
        try:
            check = await desk.check_key(
                channel_of(tracker), tracker.sender_id, tracker.sender_id, wallet_id, str(reference)
            )
        except (PendingCredentialInvalid, NotFound):
            # NotFound: the wallet slot names no wallet of this user (typed in with `/inform{…}`); the same
            # answer as for a stale reference, so it tells nothing about anyone else's wallet.
            dispatcher.utter_message(
                text="That key submission has expired or was already used. Please use a new form."
            )
            return [SlotSet("key_status", "invalid_reference"), SlotSet("credential_ref", None)]
        except DiagnosisRateLimited as limited:
            dispatcher.utter_message(
                text=(
                    "I've tested keys for this exchange several times in the last few minutes. To keep your "
                    f"account from being locked, let's wait about {_minutes(limited.retry_after_s)} minutes "
                    "before the next test."
                )
            )
            return [SlotSet("key_status", "rate_limited"), SlotSet("credential_ref", None)]
        except UnsupportedExchange:
            dispatcher.utter_message(
                text="I can't test keys on this exchange live, so let's go through the checklist together."
            )
            return [SlotSet("key_status", "unknown_items"), SlotSet("unknown_items", [])]
        diagnosis = check.diagnosis
        dispatcher.utter_message(text=key_check_reply(diagnosis))
        if diagnosis.all_passed:
            return [SlotSet("key_status", "passed")]
        if diagnosis.unavailable is not None:
            return [SlotSet("key_status", "unavailable")]
        if needs_checklist(diagnosis):
            return [
                SlotSet("key_status", "unknown_items"),
                SlotSet("unknown_items", [o.item.value for o in diagnosis.unknown()]),
            ]
        return [
            SlotSet("key_status", "failed"),
            SlotSet("failing_items", [o.item.value for o in diagnosis.failing()]),
            SlotSet("credential_ref", None),
        ]


class ActionUpdateCredentials(DeskAction):
    """Swap the verified key into the existing wallet and start its resync (a background job)."""

    def name(self) -> str:
        return "action_update_credentials"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = self.desk
        wallet_id = wallet_id_of(tracker)
        reference = tracker.get_slot("credential_ref")
        exchange = str(tracker.get_slot("exchange"))
        if wallet_id is None or not reference:
            dispatcher.utter_message(text="I don't have a tested key to save.")
            return []
        try:
            updated = await desk.update_key(channel_of(tracker), tracker.sender_id, wallet_id, str(reference))
        except (DiagnosisNotPassed, PendingCredentialInvalid, NotFound):
            dispatcher.utter_message(
                text="I couldn't save that key: it hasn't passed its live test. Nothing was changed."
            )
            return [SlotSet("credential_ref", None), SlotSet("key_status", None)]
        dispatcher.utter_message(text=sync_started_reply(exchange, updated.masked_key))
        return [
            SlotSet("sync_run_id", str(updated.sync_run_id)),
            SlotSet("credential_ref", None),
            sync_check_reminder(updated.sync_run_id, attempt=1),
        ]


def _attempt(raw: Any) -> int:
    """The reminder's attempt number, kept within 1..SYNC_CHECK_MAX: it arrives as an entity, which anyone
    can type (`/ask_sync_status{"attempt": "-999"}` must not keep the reminders going for ever)."""
    try:
        return min(max(int(str(raw)), 1), SYNC_CHECK_MAX) if raw is not None else SYNC_CHECK_MAX
    except ValueError:
        return SYNC_CHECK_MAX


def _minutes(seconds: float) -> int:
    return max(1, round(seconds / 60))


def sync_check_reminder(sync_run_id: int, *, attempt: int) -> EventType:
    when = datetime.now(timezone.utc) + SYNC_CHECK_EVERY
    return ReminderScheduled(
        "ask_sync_status",
        trigger_date_time=when,
        entities={"sync_run_id": str(sync_run_id), "attempt": str(attempt)},
        name=f"sync-check-{sync_run_id}",
        kill_on_user_message=False,
    )


class ActionReportSync(DeskAction):
    """Tell the user how the resync went, once it is done; look again a little later while it runs."""

    def name(self) -> str:
        return "action_report_sync"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = self.desk
        entities = {e["entity"]: e.get("value") for e in tracker.latest_message.get("entities", [])}
        raw_id = entities.get("sync_run_id") or tracker.get_slot("sync_run_id")
        attempt = _attempt(entities.get("attempt"))
        if raw_id is None:
            dispatcher.utter_message(text="There's no resync running for you right now.")
            return []
        try:
            report = await desk.sync_report(channel_of(tracker), tracker.sender_id, int(str(raw_id)))
        except (NotFound, ValueError):
            # Unknown, or another user's (the desk does not say which): nothing is reported or scheduled.
            dispatcher.utter_message(text="I couldn't find that resync among your wallets.")
            return []
        exchange = report.exchange or str(tracker.get_slot("exchange"))
        if not report.finished:
            if attempt < SYNC_CHECK_MAX:
                return [sync_check_reminder(report.sync_run_id, attempt=attempt + 1)]
            dispatcher.utter_message(text=sync_report_reply(exchange, report))
            return []
        dispatcher.utter_message(text=sync_report_reply(exchange, report))
        if report.status == "succeeded":
            # CSAT (issue 16): the key update is done, so the one question comes now (its answer: csat.py).
            dispatcher.utter_message(text=csat.QUESTION, buttons=csat.rating_buttons())
        return [SlotSet("sync_run_id", None)]
