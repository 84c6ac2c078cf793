"""Slack events and button clicks, signed and shaped as Slack sends them, against the real Rasa server with
`channels.slack.KeyMedicSlackInput` (credentials.yml), the action server and the sandbox; Slack's Web API is
`FakeSlackApi` on 127.0.0.1, which records every message the bot posts (docs/slack.md "Testing")."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.redaction import REDACTED
from bot.sandbox.scenarios import credentials_for
from channels.screening import NOTICE
from channels.slack import (
    CODE_ACCEPTED,
    CODE_REFUSED,
    LINK_PROMPT,
    NO_CODE_WAITING,
    NOT_YOUR_THREAD,
)
from channels.slack_output import conversation_id, escape
from tests.support.slack import BOT_USER, SlackStack, event_body, message_event, start_slack_stack

pytestmark = [pytest.mark.integration, pytest.mark.rasa_model]

DEMO_SLACK = "U0DEMO"  # linked to the demo user
BOB_SLACK = "U0BOB"  # linked to another KeyMedic user, with no wallets
STRANGER = "U0STRANGER"  # not linked
_counter = itertools.count(1)


def new_ts() -> str:
    return f"{int(time.time())}.{next(_counter):06d}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackStack]:
    with start_slack_stack(tmp_path_factory.mktemp("slack"), ("sandbox", "actions", "rasa")) as running:
        running.link("demo", DEMO_SLACK)
        running.link("bob", BOB_SLACK)
        yield running


def answered(
    stack: SlackStack,
    text: str,
    *,
    channel: str,
    ts: str,
    thread_ts: str,
    user: str = DEMO_SLACK,
    channel_type: str = "im",
    expected: list[str],
) -> None:
    """A barrier: `text`, sent now in the thread `thread_ts`, must be answered, and the thread's conversation
    then holds exactly `expected`. Rasa takes one conversation's messages one at a time, in the order they
    came, so anything sent before in that thread has been handled (or dropped) by then."""
    stack.send(
        message_event(
            user=user, text=text, channel=channel, ts=ts, thread_ts=thread_ts, channel_type=channel_type
        ),
        event_id=f"Ev{ts}",
    )
    assert stack.wait_for_turns(conversation_id(stack.team, channel, thread_ts), len(expected)) == expected


def test_slacks_url_verification_is_answered_once_signed(stack: SlackStack) -> None:
    body = json.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    from tests.support.slack import signed_headers

    answer = stack.post(body, signed_headers(stack.signing_secret, body, content_type="application/json"))
    assert answer.status_code == 200
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert stack.post(body, {"Content-Type": "application/json"}).status_code == 401


def test_unsigned_wrongly_signed_and_replayed_requests_are_refused_and_never_reach_the_bot(
    stack: SlackStack,
) -> None:
    ts = new_ts()
    event = message_event(user=DEMO_SLACK, text="hi", channel="D0REFUSED", ts=ts)
    body = event_body(stack.team, event, event_id="EvREFUSED1")
    from tests.support.slack import signed_headers

    good = signed_headers(stack.signing_secret, body, content_type="application/json")
    answers = {
        "unsigned": stack.post(body, {"Content-Type": "application/json"}),
        "wrong secret": stack.send(event, event_id="EvREFUSED2", secret="another-apps-signing-secret"),
        "tampered": stack.post(body.replace(b'"hi"', b'"hello"'), good),
        "replayed": stack.send(event, event_id="EvREFUSED3", timestamp=int(time.time()) - 6 * 60),
        "from the future": stack.send(event, event_id="EvREFUSED4", timestamp=int(time.time()) + 6 * 60),
    }
    codes = {name: (a.status_code, a.json()["error"]) for name, a in answers.items()}
    assert codes == {
        "unsigned": (401, "missing_signature"),
        "wrong secret": (401, "bad_signature"),
        "tampered": (401, "bad_signature"),
        "replayed": (401, "stale_request"),
        "from the future": (401, "stale_request"),
    }
    # A refusal is answered before the event is read (`receive` verifies first), and the same event signed
    # right is answered: the first and only time the bot hears "hi" in this thread.
    assert stack.send(event, event_id="EvREFUSED5").status_code == 200
    stack.fake.wait_for("chat.postMessage", thread_ts=ts)
    assert stack.wait_for_turns(conversation_id(stack.team, "D0REFUSED", ts), 1) == ["hi"]


def test_a_linked_users_direct_message_reaches_the_bot_and_the_answer_comes_back_in_its_thread(
    stack: SlackStack,
) -> None:
    ts = new_ts()
    answer = stack.send(
        message_event(user=DEMO_SLACK, text="hi", channel="D0DEMO", ts=ts), event_id="EvHELLO"
    )
    assert answer.status_code == 200
    [first, *_] = stack.fake.wait_for("chat.postMessage", thread_ts=ts)
    # The top-level message started a thread: every answer is in it, in the DM, posted with the bot token.
    assert first.arguments["channel"] == "D0DEMO" and first.arguments["thread_ts"] == ts
    assert first.token == "xoxb-keymedic-test-token"
    assert stack.wait_for_turns(conversation_id(stack.team, "D0DEMO", ts), 1) == ["hi"]


def test_a_retried_event_and_the_same_message_twice_do_not_act_twice(stack: SlackStack) -> None:
    ts = new_ts()
    event = message_event(
        user=DEMO_SLACK, text="what permissions should the key have?", channel="D0DEMO", ts=ts
    )
    question = "what permissions should the key have?"
    assert stack.send(event, event_id="EvRETRY").status_code == 200
    stack.fake.wait_for("chat.postMessage", thread_ts=ts)
    assert stack.wait_for_turns(conversation_id(stack.team, "D0DEMO", ts), 1) == [question]

    # Slack's retry of the same event (its "http_timeout" retry), then the same message under another event
    # id (a channel message arrives as both `message` and `app_mention`): both acknowledged, neither acted on.
    retried = stack.send(event, event_id="EvRETRY", retry=1)
    again = stack.send(event, event_id="EvRETRY-OTHER-EVENT")
    assert retried.status_code == 200 and again.status_code == 200
    answered(stack, "thanks", channel="D0DEMO", ts=new_ts(), thread_ts=ts, expected=[question, "thanks"])


def test_a_double_clicked_button_has_one_effect(stack: SlackStack) -> None:
    ts = new_ts()
    stack.send(
        message_event(user=DEMO_SLACK, text="my wallet stopped syncing", channel="D0DEMO", ts=ts),
        event_id="EvBTN",
    )
    deadline = time.monotonic() + 60
    with_buttons: dict[str, Any] | None = None
    while with_buttons is None and time.monotonic() < deadline:
        for call in stack.fake.calls_to("chat.postMessage", thread_ts=ts):
            if any(b.get("type") == "actions" for b in call.arguments.get("blocks") or []):
                with_buttons = call.arguments
        time.sleep(0.2)
    assert with_buttons is not None, "the bot asked nothing with buttons"
    conversation = conversation_id(stack.team, "D0DEMO", ts)
    assert stack.wait_for_turns(conversation, 1) == ["my wallet stopped syncing"]
    actions = next(b for b in with_buttons["blocks"] if b["type"] == "actions")
    button = next(e for e in actions["elements"] if "value" in e)
    # The message as Slack stores it: the ts Slack gave it, in the thread.
    [posted] = [
        c
        for c in stack.fake.calls_to("chat.postMessage", thread_ts=ts)
        if c.arguments.get("blocks") == with_buttons["blocks"]
    ]
    message = {
        "type": "message",
        "ts": new_ts(),
        "thread_ts": ts,
        "text": with_buttons["text"],
        "blocks": with_buttons["blocks"],
    }
    click = {
        "type": "button",
        "action_id": button["action_id"],
        "block_id": actions["block_id"],
        "value": button["value"],
        "text": button["text"],
    }
    before = stack.user_texts(conversation)

    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda _: stack.click(user=DEMO_SLACK, channel="D0DEMO", message=message, action=click),
                range(2),
            )
        )
    assert [a.status_code for a in answers] == [200, 200]
    # One click reached the bot, once: a later message in the thread is answered after it, and after nothing
    # else.
    answered(
        stack,
        "thanks",
        channel="D0DEMO",
        ts=new_ts(),
        thread_ts=ts,
        expected=[*before, button["value"], "thanks"],
    )
    # The clicked message now shows the choice instead of its buttons.
    [update] = stack.fake.calls_to("chat.update")
    assert update.arguments["ts"] == message["ts"] and not any(
        b["type"] == "actions" for b in update.arguments["blocks"]
    )
    assert posted is not None


def test_an_unlinked_slack_user_is_told_how_to_link_and_gets_no_account_data(stack: SlackStack) -> None:
    ts = new_ts()
    stack.send(
        message_event(
            user=STRANGER,
            text="how many manual edits does my kraken wallet have?",
            channel="D0STRANGER",
            ts=ts,
        ),
        event_id="EvSTRANGER",
    )
    [prompt] = stack.fake.wait_for("chat.postEphemeral", thread_ts=ts)
    assert prompt.arguments["user"] == STRANGER and prompt.arguments["channel"] == "D0STRANGER"
    assert prompt.arguments["text"] == escape(LINK_PROMPT)
    [button] = prompt.arguments["blocks"][1]["elements"]
    assert "/slack/link?token=sl_" in button["url"]
    # Nothing reached the bot, so nothing about any wallet could be said: the prompt is the delivery's last
    # act (`_deliver` returns after it), and a linked user's message sent after it is answered before any
    # word of this thread.
    later = new_ts()
    answered(stack, "hi", channel="D0DEMO", ts=later, thread_ts=later, expected=["hi"])
    assert stack.fake.calls_to("chat.postMessage", thread_ts=ts) == []
    assert stack.user_texts(conversation_id(stack.team, "D0STRANGER", ts)) == []


def _store(stack: SlackStack) -> Any:
    """A unit of work on the stack's database, as the web app has (the caller disposes `uow.database`)."""
    from dataclasses import replace

    from bot.config import load_settings
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = replace(load_settings(), var_dir=stack.var_dir, database_url=stack.database_url)
    database = create_database(stack.database_url)
    return SqlAlchemyUnitOfWork(database, load_key_ring(settings)), database


def _code_for(stack: SlackStack, link_url: str, handle: str) -> str:
    """What the web app does when `handle`, signed in, opens the link: the code it shows them."""
    from datetime import datetime, timezone
    from urllib.parse import parse_qs, urlsplit

    from bot.store import services, slack

    [token] = parse_qs(urlsplit(link_url).query)["token"]
    uow, database = _store(stack)
    try:
        with uow:
            code = slack.issue_link_code(
                uow, token, services.ensure_user(uow, handle), now=datetime.now(timezone.utc)
            )
            uow.commit()
        return code
    finally:
        database.dispose()


def _linked_handle(stack: SlackStack, slack_user: str) -> str | None:
    from bot.store import slack

    uow, database = _store(stack)
    try:
        with uow:
            user = slack.linked_user(uow, stack.team, slack_user)
            return user.handle if user is not None else None
    finally:
        database.dispose()


def test_a_slack_link_is_made_only_by_the_slack_user_who_asked_sending_the_code_in_its_dm(
    stack: SlackStack,
) -> None:
    carol, eve = "U0CAROL", "U0EVE"

    def dm(user: str, text: str, event_id: str) -> list[Any]:
        ts = new_ts()
        stack.send(message_event(user=user, text=text, channel=f"D{user[1:]}", ts=ts), event_id=event_id)
        return [call.arguments for call in stack.fake.wait_for("chat.postEphemeral", thread_ts=ts)]

    [prompt] = dm(carol, "hello", "EvCAROL1")
    assert prompt["text"] == escape(LINK_PROMPT)
    code = _code_for(stack, prompt["blocks"][1]["elements"][0]["url"], "carol")
    assert _linked_handle(stack, carol) is None  # getting the code on the web links nothing

    # The code said in a channel is not taken: only a DM is surely from the user.
    top = new_ts()
    stack.send(
        message_event(
            user=carol, text=f"<@{BOT_USER}> {code}", channel="C0SUPPORT", ts=top, kind="app_mention"
        ),
        event_id="EvCAROLCHAN",
    )
    [in_channel] = stack.fake.wait_for("chat.postEphemeral", thread_ts=top)
    assert in_channel.arguments["text"] == escape(LINK_PROMPT)
    assert _linked_handle(stack, carol) is None
    # Another Slack user sending carol's code gets nothing.
    [other] = dm(eve, code, "EvEVE1")
    assert other["text"] == escape(NO_CODE_WAITING) and _linked_handle(stack, eve) is None
    # A wrong code is refused and counted.
    wrong = "ABCD-EFGH" if code != "ABCD-EFGH" else "HGFE-DCBA"
    [refused] = dm(carol, wrong, "EvCAROL2")
    assert refused["text"] == escape(CODE_REFUSED["wrong_code"])
    [accepted] = dm(carol, code.lower(), "EvCAROL3")
    assert accepted["text"] == escape(CODE_ACCEPTED.format(handle="carol"))
    assert _linked_handle(stack, carol) == "carol"

    # Now carol's messages reach the bot.
    ts = new_ts()
    stack.send(message_event(user=carol, text="hi", channel="D0CAROL", ts=ts), event_id="EvCAROL4")
    stack.fake.wait_for("chat.postMessage", thread_ts=ts)
    assert stack.wait_for_turns(conversation_id(stack.team, "D0CAROL", ts), 1) == ["hi"]


def test_a_pasted_secret_is_redacted_before_the_bot_and_the_user_is_told_to_revoke(stack: SlackStack) -> None:
    ts = new_ts()
    secret = credentials_for("kraken", "valid")["api_secret"]
    stack.send(
        message_event(
            user=DEMO_SLACK, text=f"my kraken key broke, the secret is {secret}", channel="D0DEMO", ts=ts
        ),
        event_id="EvSECRET",
    )
    notices = stack.fake.wait_for("chat.postEphemeral", thread_ts=ts)
    assert notices[0].arguments["text"] == escape(NOTICE)
    stack.fake.wait_for("chat.postMessage", thread_ts=ts)
    [said] = stack.wait_for_turns(conversation_id(stack.team, "D0DEMO", ts), 1)
    assert REDACTED in said and secret not in said
    assert secret not in json.dumps(stack.tracker_events(conversation_id(stack.team, "D0DEMO", ts)))


def test_a_channel_thread_is_its_openers_conversation_and_other_threads_are_not_the_bots(
    stack: SlackStack,
) -> None:
    top = new_ts()
    mention = message_event(
        user=DEMO_SLACK, text=f"<@{BOT_USER}> hi", channel="C0SUPPORT", ts=top, kind="app_mention"
    )
    stack.send(mention, event_id="EvMENTION")
    stack.fake.wait_for("chat.postMessage", thread_ts=top)
    conversation = conversation_id(stack.team, "C0SUPPORT", top)
    assert stack.wait_for_turns(conversation, 1) == ["hi"]  # the mention is taken out

    # Someone else in the thread is told it is not theirs; nothing reaches the bot.
    reply = message_event(
        user=BOB_SLACK, text="me too", channel="C0SUPPORT", ts=new_ts(), thread_ts=top, channel_type="channel"
    )
    stack.send(reply, event_id="EvBOB")
    [told] = stack.fake.wait_for("chat.postEphemeral", thread_ts=top)
    assert told.arguments["user"] == BOB_SLACK and told.arguments["text"] == escape(NOT_YOUR_THREAD)
    # The opener goes on in the thread without mentioning the bot.
    stack.send(
        message_event(
            user=DEMO_SLACK,
            text="thanks",
            channel="C0SUPPORT",
            ts=new_ts(),
            thread_ts=top,
            channel_type="channel",
        ),
        event_id="EvTHANKS",
    )
    assert stack.wait_for_turns(conversation, 2) == ["hi", "thanks"]

    # A thread KeyMedic is not part of is left alone, whoever is linked.
    other_top = new_ts()
    stack.send(
        message_event(
            user=DEMO_SLACK,
            text="lunch?",
            channel="C0SUPPORT",
            ts=new_ts(),
            thread_ts=other_top,
            channel_type="channel",
        ),
        event_id="EvLUNCH",
    )
    # The opener's next word in KeyMedic's thread, sent once "lunch?" was acknowledged, is answered;
    # "lunch?", handled first and with less to do, got nothing.
    answered(
        stack,
        "one more thing",
        channel="C0SUPPORT",
        ts=new_ts(),
        thread_ts=top,
        channel_type="channel",
        expected=["hi", "thanks", "one more thing"],
    )
    assert stack.fake.calls_to("chat.postMessage", thread_ts=other_top) == []
    assert stack.fake.calls_to("chat.postEphemeral", thread_ts=other_top) == []


def test_a_message_over_the_size_limit_is_answered_to_its_sender_and_never_reaches_the_bot(
    stack: SlackStack,
) -> None:
    from channels.screening import MAX_MESSAGE_CHARS, TOO_LONG

    ts = new_ts()
    stack.send(
        message_event(user=DEMO_SLACK, text="word " * (MAX_MESSAGE_CHARS // 4), channel="D0DEMO", ts=ts),
        event_id="EvTOOLONG",
    )
    [notice] = stack.fake.wait_for("chat.postEphemeral", thread_ts=ts)
    assert notice.arguments["text"] == escape(TOO_LONG)
    # The next message in the thread is the first the bot hears there.
    answered(stack, "hi", channel="D0DEMO", ts=new_ts(), thread_ts=ts, expected=["hi"])
