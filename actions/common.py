"""What every KeyMedic action shares: who is talking, on which channel, and the one `SupportDesk`.

rasa_sdk builds each action once, at import time, with no arguments, so the desk is created lazily and
shared; tests hand their own desk to an action's constructor instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker

from bot.assistant import SupportDesk
from bot.config import load_settings
from bot.handoff.desk import HandoffDesk, rasa_history

_shared_desk: SupportDesk | None = None
_shared_handoff: HandoffDesk | None = None


def shared_desk() -> SupportDesk:
    """The process's desk (database connections are pooled inside it)."""
    global _shared_desk
    if _shared_desk is None:
        _shared_desk = SupportDesk()
    return _shared_desk


def shared_handoff() -> HandoffDesk:
    """The process's hand-off desk: one database engine for every hand-off and removal check, not one per
    action call."""
    global _shared_handoff
    if _shared_handoff is None:
        # The tracker an action gets is the conversation's last turns (rasa_plugins/tracker_store.py); the
        # ticket's transcript reads the whole conversation from Rasa.
        settings = load_settings()
        _shared_handoff = HandoffDesk(settings, history=rasa_history(settings))
    return _shared_handoff


def channel_of(tracker: Tracker) -> str:
    """The channel the user talks on ("rest", "socketio", "slack", …); "rest" when Rasa did not say."""
    return tracker.get_latest_input_channel() or "rest"


def wallet_id_of(tracker: Tracker) -> int | None:
    """The `wallet_id` slot as a number, or None when unset or not a number."""
    value: Any = tracker.get_slot("wallet_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def exchange_of(tracker: Tracker) -> str | None:
    """The exchange the latest message names, else the `exchange` slot, as an exchange id (or None).

    Questions and side requests don't fill the slot (domain.yml), so their actions read the entity here; a
    misspelt name ("can I remove my krakn wallet") is no entity, so the text is read for one too
    (bot/exchange_mentions.py, confident readings only)."""
    from bot.exchange_ids import normalize_exchange
    from bot.exchange_mentions import intended_exchange

    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "exchange":
            named = normalize_exchange(str(entity.get("value")))
            if named is not None:
                return named
    text = str(tracker.latest_message.get("text") or "")
    typed = intended_exchange(text) if not text.startswith("/") else None
    if typed is not None and typed.confident:
        return typed.exchange
    return normalize_exchange(tracker.get_slot("exchange"))


def inform_payload(**entities: object) -> str:
    """A button payload that sets entities without going through NLU, e.g. `/inform{"wallet_id":"3"}`."""
    import json

    return "/inform" + json.dumps({k: str(v) for k, v in entities.items()}, separators=(",", ":"))


class DeskAction(Action, ABC):
    """An action that works through a `SupportDesk`: the process's shared one, or the one a test passes."""

    def __init__(self, desk: SupportDesk | None = None) -> None:
        self._desk = desk

    @property
    def desk(self) -> SupportDesk:
        return self._desk or shared_desk()

    @abstractmethod
    def name(self) -> str:
        """Abstract here so rasa_sdk's executor registers only the concrete actions."""
