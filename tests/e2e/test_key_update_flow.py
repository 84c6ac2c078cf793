"""The article's main path over the real servers: a broken key reported in chat, the new key entered in the
secure form (never in the chat), tested live on the sandbox, swapped into the existing wallet and resynced
with the manual edits intact; and removal, which is answered with what it would cost, never with steps."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bot.assistant import SupportDesk
from bot.sandbox.scenarios import credentials_for
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e

DEMO = "demo"


def _texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text") or "") for r in replies)


def _form(replies: list[dict[str, Any]]) -> dict[str, Any]:
    forms = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)]
    assert forms, f"no credential form in {replies}"
    form: dict[str, Any] = forms[-1]
    return form


async def _demo_wallets(stack: RasaStack) -> dict[str, int]:
    return {w.exchange: w.wallet_id for w in await SupportDesk(stack.settings).wallets("rest", DEMO)}


async def test_a_revoked_kraken_key_is_replaced_in_place_and_resynced_with_edits_kept(
    rasa_stack: RasaStack,
) -> None:
    desk = SupportDesk(rasa_stack.settings)
    kraken = (await _demo_wallets(rasa_stack))["kraken"]
    edits_before = await desk.removal_impact("rest", DEMO, kraken)
    rasa_stack.say(DEMO, "/restart")

    replies = rasa_stack.say(DEMO, "my kraken wallet says the api key is invalid")
    form = _form(replies)
    assert form["wallet_id"] == kraken
    assert "not in the chat" in _texts(replies)

    posted = httpx.post(
        form["submit_url"],
        json={"token": form["token"], "wallet_id": kraken, **credentials_for("kraken", "valid")},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    reference = posted.json()["reference"]

    replies = rasa_stack.say(DEMO, f'/credentials_submitted{{"credential_ref": "{reference}"}}')
    text = _texts(replies)
    assert "passed every check" in text
    assert "existing Kraken connection now uses the new key" in text

    deadline = time.monotonic() + 60
    while "syncing again" not in text:
        assert time.monotonic() < deadline, f"the resync never finished: {text}"
        time.sleep(1)
        text = _texts(rasa_stack.say(DEMO, "is the sync done yet?"))

    assert list((await _demo_wallets(rasa_stack)).values()).count(kraken) == 1
    assert await desk.removal_impact("rest", DEMO, kraken) == edits_before


async def test_a_key_with_withdrawals_on_is_refused_with_the_fix(rasa_stack: RasaStack) -> None:
    rasa_stack.say(DEMO, "/restart")
    replies = rasa_stack.say(DEMO, "I want to swap the api key on my coinbase")
    form = _form(replies)
    posted = httpx.post(
        form["submit_url"],
        json={
            "token": form["token"],
            "wallet_id": form["wallet_id"],
            **credentials_for("coinbase", "withdrawals_enabled"),
        },
        timeout=10,
    )
    reference = posted.json()["reference"]
    text = _texts(rasa_stack.say(DEMO, f'/credentials_submitted{{"credential_ref": "{reference}"}}'))
    assert "doesn't work yet" in text
    assert "Nothing was saved" in text


def test_removal_is_answered_with_the_edits_at_stake_and_support_never_with_steps(
    rasa_stack: RasaStack,
) -> None:
    rasa_stack.say(DEMO, "/restart")
    text = _texts(rasa_stack.say(DEMO, "can I just delete my kraken exchange and add it again?"))
    assert "8 manual edits" in text
    assert "support" in text
    for instruction in ("Wallets page", "[...]", "Remove wallet", "click remove"):
        assert instruction not in text
