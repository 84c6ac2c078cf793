"""Ids another user types as `/intent{json}` over the running bot (REST channel) are refused without saying
whether they exist (issue 15, item 7): the demo user's resync and wallet, named by `mallory`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import RasaStack, texts

pytestmark = pytest.mark.e2e

# The demo's first Kraken sync (bot/demo.py seeds the Kraken wallet first): run 1, wallet 1.
DEMO_RUN, DEMO_WALLET = "1", "1"


def _events(stack: RasaStack, sender: str) -> list[dict[str, Any]]:
    tracker = stack.api("GET", f"/conversations/{sender}/tracker").json()
    events: list[dict[str, Any]] = tracker["events"]
    return events


def test_another_users_resync_is_neither_reported_nor_watched(rasa_stack: RasaStack) -> None:
    replies = rasa_stack.say("mallory", f'/ask_sync_status{{"sync_run_id": "{DEMO_RUN}"}}')
    assert texts(replies) == "I couldn't find that resync among your wallets."
    assert not [e for e in _events(rasa_stack, "mallory") if e.get("event") == "reminder"]
    # The owner asking the same gets the report: the refusal is about who asks, not about the id.
    demo = rasa_stack.say("demo", f'/ask_sync_status{{"sync_run_id": "{DEMO_RUN}"}}')
    assert "Kraken" in texts(demo) and "couldn't find" not in texts(demo)


def test_another_users_wallet_typed_in_gets_no_secure_form(rasa_stack: RasaStack) -> None:
    replies = rasa_stack.say(
        "mallory-2", f'/update_key{{"exchange": "kraken", "wallet_id": "{DEMO_WALLET}"}}'
    )
    forms = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)]
    # Mallory has no Kraken wallet: the form makes her one, never hands out a token for the demo's.
    assert all(str(form.get("wallet_id")) != DEMO_WALLET for form in forms), forms
