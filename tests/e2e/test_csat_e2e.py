"""CSAT (issue 16) over the real REST channel and servers: a key update that finishes without a ticket ends
with the one rating question; typed ratings ("4", "five", "4/5") and the buttons are recorded in the
conversation; an answer that is not a rating does not hold the user: the bot just carries on.

The later questions are asked as a closed ticket asks them (the web app's client appends the question to the
conversation, bot/web/agent.py `ask_csat`), so one resync serves every way of answering.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bot import csat
from bot.assistant import SupportDesk
from bot.handoff.rasa import RasaConversations
from bot.sandbox.scenarios import credentials_for
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e

DEMO = "demo"
QUESTION = "how well did we help you today"
RATING_PAYLOADS = [f'/inform{{"csat_rating": "{n}"}}' for n in range(1, 6)]


def _texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text") or "") for r in replies)


def _asks_for_a_rating(replies: list[dict[str, Any]]) -> bool:
    """The rating question, with its five buttons."""
    return any(
        QUESTION in str(r.get("text") or "")
        and [b.get("payload") for b in r.get("buttons") or []] == RATING_PAYLOADS
        for r in replies
    )


def _rating(stack: RasaStack) -> object:
    tracker = stack.api("GET", f"/conversations/{DEMO}/tracker", params={"include_events": "NONE"})
    tracker.raise_for_status()
    return tracker.json()["slots"].get("csat_rating")


async def _ask_again(stack: RasaStack) -> None:
    """The question as a ticket's close asks it: the web app's own client (bot/handoff/rasa.py)."""
    rasa = RasaConversations(stack.rasa_url, token=stack.rasa_token)
    try:
        await rasa.send_bot_message(DEMO, csat.QUESTION, buttons=csat.rating_buttons())
    finally:
        await rasa.aclose()
    events = (await _events(stack))[-1:]
    assert events and _asks_for_a_rating([{**e, **(e.get("data") or {})} for e in events]), events


async def _events(stack: RasaStack) -> list[dict[str, Any]]:
    tracker = stack.api("GET", f"/conversations/{DEMO}/tracker", params={"include_events": "AFTER_RESTART"})
    tracker.raise_for_status()
    return [e for e in tracker.json()["events"] if e.get("event") == "bot"]


async def test_a_finished_key_update_asks_for_one_rating_typed_or_tapped(rasa_stack: RasaStack) -> None:
    wallets = await SupportDesk(rasa_stack.settings).wallets("rest", DEMO)
    kraken = next(w.wallet_id for w in wallets if w.exchange == "kraken")
    rasa_stack.say(DEMO, "/restart")
    replies = rasa_stack.say(DEMO, "my kraken api key got revoked")
    assert not _asks_for_a_rating(replies)
    form = next(r["custom"] for r in replies if isinstance(r.get("custom"), dict))
    assert form["wallet_id"] == kraken
    posted = httpx.post(
        form["submit_url"],
        json={"token": form["token"], "wallet_id": kraken, **credentials_for("kraken", "valid")},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    replies = rasa_stack.say(
        DEMO, f'/credentials_submitted{{"credential_ref": "{posted.json()["reference"]}"}}'
    )
    assert "passed every check" in _texts(replies)

    # No ticket: when the resync is reported done, the one question comes with it.
    deadline = time.monotonic() + 60
    while "syncing again" not in _texts(replies):
        assert not _asks_for_a_rating(replies), "asked before the key update finished"
        assert time.monotonic() < deadline, f"the resync never finished: {_texts(replies)}"
        time.sleep(1)
        replies = rasa_stack.say(DEMO, "is the sync done yet?")
    assert _asks_for_a_rating(replies), replies
    assert _rating(rasa_stack) is None

    text = _texts(rasa_stack.say(DEMO, "4"))
    assert "Thank you for rating us 4 out of 5" in text, text
    assert _rating(rasa_stack) == "4"

    # Typed in words, and with the scale; then a button.
    for answer, rating in (("five", "5"), ("4/5", "4"), (RATING_PAYLOADS[1], "2")):
        await _ask_again(rasa_stack)
        text = _texts(rasa_stack.say(DEMO, answer))
        assert f"Thank you for rating us {rating} out of 5" in text, (answer, text)
        assert _rating(rasa_stack) == rating

    # A user who answers with something else is not held: the bot does what they asked, and the last
    # rating given stands.
    await _ask_again(rasa_stack)
    replies = rasa_stack.say(DEMO, "ok thanks, bye")
    text = _texts(replies)
    assert text and "Thank you for rating" not in text and "pick a number" not in text, text
    assert not _asks_for_a_rating(replies)
    await _ask_again(rasa_stack)
    replies = rasa_stack.say(DEMO, "binance revoked my api key")
    text = _texts(replies)
    assert "Thank you" not in text and "pick a number" not in text, text
    assert any(isinstance(r.get("custom"), dict) for r in replies), replies  # the key form, for Binance
    assert not _asks_for_a_rating(replies)
    assert _rating(rasa_stack) == "2"
    rasa_stack.say(DEMO, "/restart")
