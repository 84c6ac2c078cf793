"""The key update over the real servers for the four exchanges that got a live check in issue 17: a user
with a broken Bybit, Gate.io, Crypto.com or Bitfinex connection reports it in chat, enters the new key in the
secure form, it is tested live on the sandbox, swapped into the existing wallet and resynced; a refused key
is explained item by item and nothing is saved."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bot.assistant import SupportDesk
from bot.diagnosis.model import Credentials
from bot.exchange_ids import DISPLAY_NAMES
from bot.sandbox.scenarios import credentials_for
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e

NEW = ["bybit", "gate_io", "crypto_com", "bitfinex"]
SAID = {"bybit": "bybit", "gate_io": "gate.io", "crypto_com": "crypto.com", "bitfinex": "bitfinex"}
# What each exchange's API doesn't report about a key, so the bot asks (reference §0.5).
ASKS = {"crypto_com": ["trading", "IP restrictions"], "bitfinex": ["IP restrictions"]}


def _texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text") or "") for r in replies)


def _form(replies: list[dict[str, Any]]) -> dict[str, Any]:
    forms = [r["custom"] for r in replies if isinstance(r.get("custom"), dict)]
    assert forms, f"no credential form in {replies}"
    form: dict[str, Any] = forms[-1]
    return form


def _user_with_a_broken_wallet(stack: RasaStack, exchange: str) -> tuple[str, int]:
    """A user of its own (the REST sender id names it) whose one wallet holds the sandbox's revoked key."""
    from bot.store import services
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    handle = f"e2e-{exchange}-{int(time.time() * 1000)}"
    database = create_database(stack.settings.database_url)
    try:
        uow = SqlAlchemyUnitOfWork(database, load_key_ring(stack.settings))
        with uow:
            user = services.ensure_user(uow, handle)
            services.link_identity(uow, user, channel="rest", external_id=handle)
            uow.commit()
            user_id = user.id
        assert user_id is not None
        update = services.update_or_connect(
            uow,
            user_id=user_id,
            exchange=exchange,
            credentials=Credentials.from_mapping(credentials_for(exchange, "revoked")),
            diagnosis_passed=True,
        )
        return handle, update.wallet_id
    finally:
        database.dispose()


def _submit(stack: RasaStack, sender: str, form: dict[str, Any], exchange: str, scenario: str) -> str:
    posted = httpx.post(
        form["submit_url"],
        json={"token": form["token"], "wallet_id": form["wallet_id"], **credentials_for(exchange, scenario)},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    reference = posted.json()["reference"]
    return _texts(stack.say(sender, f'/credentials_submitted{{"credential_ref": "{reference}"}}'))


@pytest.mark.parametrize("exchange", ["bybit", "gate_io"])
async def test_a_new_key_is_tested_live_and_replaces_the_broken_one_in_place(
    rasa_stack: RasaStack, exchange: str
) -> None:
    sender, wallet_id = _user_with_a_broken_wallet(rasa_stack, exchange)
    replies = rasa_stack.say(sender, f"my {SAID[exchange]} wallet says the api key is invalid")
    form = _form(replies)
    assert form["wallet_id"] == wallet_id

    text = _submit(rasa_stack, sender, form, exchange, "valid")
    assert "passed every check" in text, text
    assert f"existing {DISPLAY_NAMES[exchange]} connection now uses the new key" in text  # type: ignore[index]

    deadline = time.monotonic() + 90
    while "syncing again" not in text:
        assert time.monotonic() < deadline, f"the resync never finished: {text}"
        time.sleep(1)
        text = _texts(rasa_stack.say(sender, "is the sync done yet?"))
    wallets = await SupportDesk(rasa_stack.settings).wallets("rest", sender)
    assert [w.wallet_id for w in wallets if w.exchange == exchange] == [wallet_id]


@pytest.mark.parametrize("exchange", sorted(ASKS))
def test_what_the_exchange_cannot_report_is_asked_and_only_that(rasa_stack: RasaStack, exchange: str) -> None:
    """Crypto.com reports neither permissions nor IP allowlist and Bitfinex no IP allowlist (reference §0.5):
    the live test passes everything it can see and the checklist asks exactly the rest. The conversation then
    goes on as for any key with unsettled items (today: to support, nothing saved; see the issue note)."""
    sender, _ = _user_with_a_broken_wallet(rasa_stack, exchange)
    form = _form(rasa_stack.say(sender, f"my {SAID[exchange]} wallet says the api key is invalid"))
    text = _submit(rasa_stack, sender, form, exchange, "valid")
    assert "doesn't tell me everything" in text, text
    asked = []
    while "Everything on the checklist checks out" not in text and len(asked) <= len(ASKS[exchange]):
        asked.append(text)
        text = _texts(rasa_stack.say(sender, "yes"))
    questions = "\n".join(asked)
    assert len(asked) == len(ASKS[exchange]), questions
    for topic in ASKS[exchange]:
        assert topic in questions, questions
    assert "now uses the new key" not in text


@pytest.mark.parametrize(
    ("exchange", "scenario"), [("bybit", "withdrawals_enabled"), ("gate_io", "ip_whitelist")]
)
def test_a_refused_key_is_explained_and_nothing_is_saved(
    rasa_stack: RasaStack, exchange: str, scenario: str
) -> None:
    sender, _ = _user_with_a_broken_wallet(rasa_stack, exchange)
    form = _form(rasa_stack.say(sender, f"I want to swap the api key on my {SAID[exchange]}"))
    text = _submit(rasa_stack, sender, form, exchange, scenario)
    assert "doesn't work yet" in text, text
    assert "Nothing was saved" in text
