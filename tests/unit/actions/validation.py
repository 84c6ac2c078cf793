"""The key update form's validator run as rasa_sdk runs it, on a real desk: the project's domain as the
action server loads it, the demo user's wallets, and what one validation sets and says."""

from __future__ import annotations

from typing import Any

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.key_update import ValidateKeyUpdateForm
from bot.assistant import SupportDesk
from bot.config import PROJECT_ROOT

__all__ = ["DOMAIN", "demo_wallets", "validate"]

DOMAIN: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())


async def demo_wallets(desk: SupportDesk) -> dict[str, str]:
    """The demo user's wallet ids (as slot values) by exchange."""
    return {w.exchange: str(w.wallet_id) for w in await desk.wallets("rest", "demo")}


async def validate(desk: SupportDesk, tracker: Tracker) -> tuple[dict[str, Any], list[str]]:
    """The slots the validation action sets, and the texts it says."""
    dispatcher = CollectingDispatcher()
    events = await ValidateKeyUpdateForm(desk).run(dispatcher, tracker, DOMAIN)
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    return slots, [str(m.get("text")) for m in dispatcher.messages]
