"""The hand-off over the real servers: the bot escalates and pauses, an agent reads the ticket, replies into
the conversation, approves removal and resumes the bot — and only then does removal come with steps."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.conftest import RasaStack, texts
from tests.unit.test_no_removal_steps import removal_steps

# Also on Rasa's own tracker store (tests/e2e/conftest.py): a store could change what these see.
pytestmark = [pytest.mark.e2e, pytest.mark.both_stores]

# The demo user in a conversation of its own (one user may have several: widget, Slack), so the approval
# given here stays on this conversation's ticket and no other test sees it.
USER = "demo-handoff"


def _link_to_demo_user(stack: RasaStack, sender: str = USER) -> None:
    from bot.store import services
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    database = create_database(stack.settings.database_url)
    uow = SqlAlchemyUnitOfWork(database, load_key_ring(stack.settings))
    with uow:
        demo = uow.users.by_handle("demo")
        assert demo is not None
        services.link_identity(uow, demo, channel="rest", external_id=sender)
        uow.commit()
    database.dispose()


def test_escalation_pauses_the_bot_and_the_agent_takes_it_from_there(rasa_stack: RasaStack) -> None:
    _link_to_demo_user(rasa_stack)
    with httpx.Client(
        base_url=f"{rasa_stack.web_url}/agent/tickets",
        headers={"Authorization": f"Bearer {rasa_stack.agent_token}"},
        timeout=15,
    ) as agent:
        _escalate_and_hand_over(rasa_stack, agent)


def _escalate_and_hand_over(rasa_stack: RasaStack, agent: httpx.Client) -> None:
    before = texts(rasa_stack.say(USER, "can I just delete my kraken exchange and add it again?"))
    assert "Wallets page" not in before  # no steps without an approval

    handed_over = texts(rasa_stack.say(USER, "I want to talk to a human"))
    match = re.search(r"ticket #(\d+)", handed_over)
    assert match, handed_over
    ticket = int(match.group(1))
    assert rasa_stack.say(USER, "hello? anyone there?") == []  # paused: the bot stays silent

    assert httpx.get(f"{rasa_stack.web_url}/agent/tickets/{ticket}", timeout=10).status_code == 401
    view = agent.get(f"/{ticket}").json()["ticket"]
    transcript = " ".join(turn["text"] for turn in view["transcript"])
    assert "talk to a human" in transcript and "anyone there" in transcript
    assert view["bot_paused"] is True
    assert view["edits_at_stake"]["total"] == 8  # the removal question named the demo Kraken wallet

    assert agent.post(
        f"/{ticket}/reply", json={"agent": "sam", "text": "Hi, Sam from support here."}
    ).is_success
    tracker = rasa_stack.api("GET", f"/conversations/{USER}/tracker").json()
    assert any(
        e.get("event") == "bot" and e.get("text") == "Hi, Sam from support here." for e in tracker["events"]
    )

    approved = agent.post(f"/{ticket}/approve-removal", json={"agent": "sam"})
    # Recorded under the credential's agent (the local run's operator), not the name the body gives.
    assert approved.json()["removal_approval"]["by"] == "local-operator@localhost"
    assert agent.post(f"/{ticket}/resume", json={"agent": "sam"}).is_success
    after = texts(rasa_stack.say(USER, "ok so can I delete kraken and add it again?"))
    assert "Support approved removing Kraken" in after
    assert "8 manual edits" in after


# The removal conversations of tests/conversations/test_removal_and_handoff.yml, said to the real servers:
# (what the user says, a phrase the bot's answer must contain). Each runs in a conversation of its own.
REMOVAL_CONVERSATIONS: dict[str, list[tuple[str, str]]] = {
    "outside a form": [
        ("can I just delete my kraken exchange and add it again?", "8 manual edits"),
        ("seriously, how do I remove it", "8 manual edits"),
    ],
    "another exchange, another phrasing": [
        ("I'd rather disconnect coinbase and re-add it", "1 manual edit"),
    ],
    "no exchange named": [
        ("maybe I should just delete the wallet and start over", "manual edit"),
    ],
    "in the middle of the key update": [
        ("my kraken wallet says invalid api key", "secure form"),
        ("wouldn't it be easier to remove kraken and add it again?", "8 manual edits"),
        ("never mind", "nothing was changed"),
    ],
    "in the middle of the checklist": [
        ("the new key still doesn't work", "?"),
        ("can't I just delete the exchange?", "manual edit"),
        ("stop", "nothing was changed"),
    ],
}


@pytest.mark.parametrize("name", list(REMOVAL_CONVERSATIONS))
def test_removal_conversations_never_show_removal_steps(rasa_stack: RasaStack, name: str) -> None:
    sender = f"demo-removal-{name.replace(' ', '-')}"
    _link_to_demo_user(rasa_stack, sender)
    for said, expected in REMOVAL_CONVERSATIONS[name]:
        text = texts(rasa_stack.say(sender, said))
        assert expected in text, (said, text)
        assert removal_steps(text) == [], (said, text)


def test_removal_steps_wait_for_the_approval_even_after_support_resumed_the_bot(
    rasa_stack: RasaStack,
) -> None:
    sender = "demo-removal-resumed"
    _link_to_demo_user(rasa_stack, sender)
    with httpx.Client(
        base_url=f"{rasa_stack.web_url}/agent/tickets",
        headers={"Authorization": f"Bearer {rasa_stack.agent_token}"},
        timeout=15,
    ) as agent:
        handed_over = texts(rasa_stack.say(sender, "I want to talk to a person"))
        match = re.search(r"ticket #(\d+)", handed_over)
        assert match, handed_over
        ticket = int(match.group(1))
        assert agent.post(f"/{ticket}/resume", json={"agent": "sam"}).is_success  # resumed, not approved

        before = texts(rasa_stack.say(sender, "so can I delete kraken and add it again?"))
        assert "8 manual edits" in before
        assert removal_steps(before) == []

        assert agent.post(f"/{ticket}/approve-removal", json={"agent": "sam"}).is_success
        after = texts(rasa_stack.say(sender, "ok so can I delete kraken and add it again?"))
        assert removal_steps(after), after  # the one reply with steps, once support approved
