"""Escalation from Slack, end to end (issue 7): a linked user in a Slack thread asks for a person by
double-clicking the bot's "Talk to support" button, and retries arrive; exactly one ticket is opened, the
paused bot stays silent, and the agent's reply through the agent API reaches the same Slack thread.

Everything is real — sandbox, action server, job worker, web app (agent API), Rasa with
`channels.slack.KeyMedicSlackInput` — except Slack's Web API, which is `FakeSlackApi` on 127.0.0.1."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from channels.slack_output import conversation_id
from tests.support.slack import SlackStack, message_event, start_slack_stack

pytestmark = [pytest.mark.e2e, pytest.mark.rasa_model]

SLACK_USER = "U0ALICE"
CHANNEL = "D0ALICE"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackStack]:
    names = ("sandbox", "actions", "worker", "web", "rasa")
    with start_slack_stack(tmp_path_factory.mktemp("slack-e2e"), names) as running:
        running.link("demo", SLACK_USER)
        yield running


def tickets_of(stack: SlackStack, conversation: str) -> int:
    from bot.store import orm
    from bot.store.db import create_database

    database = create_database(stack.database_url)
    try:
        with database.engine.connect() as connection:
            query = (
                select(func.count())
                .select_from(orm.tickets)
                .where(orm.tickets.c.conversation_id == conversation)
            )
            return int(connection.execute(query).scalar_one())
    finally:
        database.dispose()


def test_escalating_from_a_slack_thread_opens_one_ticket_and_the_agent_answers_in_the_thread(
    stack: SlackStack,
) -> None:
    ts = f"{int(time.time())}.000100"
    conversation = conversation_id(stack.team, CHANNEL, ts)
    stack.send(
        message_event(
            user=SLACK_USER,
            text="can I just delete my kraken exchange and add it again?",
            channel=CHANNEL,
            ts=ts,
        ),
        event_id="EvREMOVE",
    )
    stack.fake.wait_for("chat.postMessage", thread_ts=ts)
    question = "can I just delete my kraken exchange and add it again?"
    assert stack.wait_for_turns(conversation, 1) == [question]
    calls = stack.fake.calls_to("chat.postMessage", thread_ts=ts)
    offer = next(
        c.arguments
        for c in calls
        if any(
            e.get("value") == "/request_human"
            for b in c.arguments.get("blocks") or []
            if b["type"] == "actions"
            for e in b["elements"]
        )
    )
    actions = next(b for b in offer["blocks"] if b["type"] == "actions")
    support = next(e for e in actions["elements"] if e.get("value") == "/request_human")
    message: dict[str, Any] = {
        "type": "message",
        "ts": f"{int(time.time())}.000200",
        "thread_ts": ts,
        "text": offer["text"],
        "blocks": offer["blocks"],
    }
    click = {
        "type": "button",
        "action_id": support["action_id"],
        "block_id": actions["block_id"],
        "value": "/request_human",
        "text": support["text"],
    }

    # A double click on "Talk to support".
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda _: stack.click(user=SLACK_USER, channel=CHANNEL, message=message, action=click),
                range(2),
            )
        )
    assert [a.status_code for a in answers] == [200, 200]
    deadline = time.monotonic() + 60
    handed_over: str | None = None
    while handed_over is None and time.monotonic() < deadline:
        handed_over = next(
            (
                c.arguments["text"]
                for c in stack.fake.calls_to("chat.postMessage", thread_ts=ts)
                if "ticket #" in c.arguments["text"]
            ),
            None,
        )
        time.sleep(0.2)
    assert handed_over is not None, "the bot did not hand over"
    match = re.search(r"ticket #(\d+)", handed_over)
    assert match
    ticket = int(match.group(1))

    # Slack retries the first message (it thought it lost it); the user, now paused, writes again.
    stack.send(
        message_event(
            user=SLACK_USER,
            text="can I just delete my kraken exchange and add it again?",
            channel=CHANNEL,
            ts=ts,
        ),
        event_id="EvREMOVE",
        retry=1,
    )
    # The hand-over's turn is over (the click, once), and the retry was refused before anything was done.
    assert stack.wait_for_turns(conversation, 2) == [question, "/request_human"]
    before = len(stack.fake.calls_to("chat.postMessage", thread_ts=ts))
    stack.send(
        message_event(
            user=SLACK_USER,
            text="hello? anyone there?",
            channel=CHANNEL,
            ts=f"{int(time.time())}.000300",
            thread_ts=ts,
        ),
        event_id="EvWAITING",
    )
    # Paused: the message is kept, and the bot says nothing.
    assert stack.wait_for_turns(conversation, 3) == [question, "/request_human", "hello? anyone there?"]
    assert len(stack.fake.calls_to("chat.postMessage", thread_ts=ts)) == before
    assert tickets_of(stack, conversation) == 1
    handoffs = [
        c for c in stack.fake.calls_to("chat.postMessage", thread_ts=ts) if "ticket #" in c.arguments["text"]
    ]
    assert len(handoffs) == 1  # the double click handed over once

    with httpx.Client(
        base_url=f"{stack.web_url}/agent/tickets",
        # The local operator's credential (bot.demo.ensure_local_operator, run by prepare_database).
        headers={"Authorization": f"Bearer {(stack.var_dir / 'keys' / 'agent.token').read_text().strip()}"},
        timeout=15,
        trust_env=False,
    ) as agent:
        view = agent.get(f"/{ticket}").json()["ticket"]
        assert view["bot_paused"] is True
        assert "anyone there" in " ".join(turn["text"] for turn in view["transcript"])
        assert agent.post(
            f"/{ticket}/reply", json={"agent": "sam", "text": "Hi, Sam from support here."}
        ).is_success

    [reply] = [
        c
        for c in stack.fake.wait_for("chat.postMessage", thread_ts=ts, count=before + 1)
        if "Sam from support" in c.arguments["text"]
    ]
    # The same thread of the same DM, posted with the bot's token.
    assert reply.arguments["channel"] == CHANNEL and reply.arguments["thread_ts"] == ts
    assert reply.token == "xoxb-keymedic-test-token"


def test_an_unlinked_slack_user_links_through_the_web_app_and_is_then_answered(stack: SlackStack) -> None:
    """The local run's link flow as docs/slack.md describes it: the private link, the web app's page with the
    demo sign-in, the code it shows, the same Slack user sending that code in its DM, and their next message
    reaching the bot."""
    user, channel = "U0NEWCOMER", "D0NEWCOMER"
    first = f"{int(time.time())}.000400"
    stack.send(
        message_event(user=user, text="my kraken key stopped working", channel=channel, ts=first),
        event_id="EvNEW1",
    )
    [prompt] = stack.fake.wait_for("chat.postEphemeral", thread_ts=first)
    link = prompt.arguments["blocks"][1]["elements"][0]["url"]
    assert link.startswith(f"{stack.web_url}/slack/link?token=sl_")
    assert stack.fake.calls_to("chat.postMessage", thread_ts=first) == []  # nothing reached the bot

    with httpx.Client(timeout=15, trust_env=False) as browser:
        page = browser.get(link)
        assert (
            page.status_code == 200 and user in page.text and "Show my code to link it to demo" in page.text
        )
        token = link.split("token=", 1)[1]
        done = browser.post(
            f"{stack.web_url}/slack/link", data={"token": token}, headers={"Accept": "text/html"}
        )
        assert done.status_code == 201
        assert browser.post(f"{stack.web_url}/slack/link", data={"token": token}).status_code == 409  # once
    shown = re.search(r"<kbd>([A-Z0-9]{4}-[A-Z0-9]{4})</kbd>", done.text)
    assert shown is not None

    # Seeing the code links nothing; sending it from the Slack account that asked, in its DM, does.
    coded = f"{int(time.time())}.000450"
    stack.send(message_event(user=user, text=shown[1], channel=channel, ts=coded), event_id="EvNEWCODE")
    [linked] = stack.fake.wait_for("chat.postEphemeral", thread_ts=coded)
    assert linked.arguments["user"] == user and "linked" in linked.arguments["text"].lower()
    assert stack.fake.calls_to("chat.postMessage", thread_ts=coded) == []

    second = f"{int(time.time())}.000500"
    stack.send(message_event(user=user, text="hi", channel=channel, ts=second), event_id="EvNEW2")
    [answer, *_] = stack.fake.wait_for("chat.postMessage", thread_ts=second)
    assert answer.arguments["channel"] == channel
