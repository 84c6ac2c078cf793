"""Where Slack messages go and what they look like (`channels.slack_output`), without a network."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from channels.slack_output import (
    SlackThread,
    SlackThreadOutput,
    button_blocks,
    conversation_id,
    escape,
    thread_of,
)


class RecordingClient:
    """Stands in for slack_sdk's AsyncWebClient: records what would be posted."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []

    async def chat_postMessage(self, **arguments: Any) -> dict[str, Any]:  # noqa: N802 (slack_sdk's name)
        self.posts.append(arguments)
        return {"ok": True}

    async def chat_postEphemeral(self, **arguments: Any) -> dict[str, Any]:  # noqa: N802 (slack_sdk's name)
        self.ephemerals.append(arguments)
        return {"ok": True}


def test_a_thread_is_one_conversation_and_the_id_names_it_back() -> None:
    conversation = conversation_id("T0001", "D0002", "1700000000.000100")
    assert conversation == "slack-T0001-D0002-1700000000.000100"
    assert quote(conversation, safe="") == conversation  # the agent API's Rasa URLs need no escaping
    assert thread_of(conversation) == SlackThread("T0001", "D0002", "1700000000.000100")
    # Another thread of the same channel, or the same ts in another channel, is another conversation.
    assert conversation_id("T0001", "D0002", "1700000000.000200") != conversation
    assert conversation_id("T0001", "C0003", "1700000000.000100") != conversation


@pytest.mark.parametrize(
    ("team", "channel", "ts"),
    [
        ("T1", "C1", "not-a-ts"),
        ("t1", "C1", "1.2"),
        ("T1", "C1-X", "1.2"),
        ("", "C1", "1.2"),
        ("T1", "C1", "1.2\n"),
    ],
)
def test_malformed_slack_ids_make_no_conversation(team: str, channel: str, ts: str) -> None:
    with pytest.raises(ValueError):
        conversation_id(team, channel, ts)


@pytest.mark.parametrize(
    "other",
    ["demo", "w-0123456789abcdef0123456789abcdef", "slack-T1-C1", "slack-T1-C1-1.2-x", "slack:T1:C1:1.2"],
)
def test_other_conversations_name_no_slack_thread(other: str) -> None:
    assert thread_of(other) is None


def test_control_characters_are_escaped() -> None:
    assert escape("a <@U123> & <!channel> > b") == "a &lt;@U123&gt; &amp; &lt;!channel&gt; &gt; b"


def test_buttons_are_block_kit_with_payloads_and_links() -> None:
    blocks = button_blocks(
        "Which exchange is it?",
        [
            {"title": "Kraken", "payload": '/inform{"exchange":"kraken"}'},
            {"title": "Kraken's API page", "url": "https://www.kraken.com/u/security/api", "type": "web_url"},
        ],
    )
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": "Which exchange is it?"}}
    actions = blocks[1]
    assert actions["type"] == "actions"
    first, second = actions["elements"]
    assert first["value"] == '/inform{"exchange":"kraken"}' and "url" not in first
    assert second["url"] == "https://www.kraken.com/u/security/api" and "value" not in second
    assert first["action_id"] != second["action_id"]  # Slack requires unique action ids in a message
    assert all(len(e["text"]["text"]) <= 75 for e in actions["elements"])


def test_an_over_long_button_text_is_clipped_to_slacks_limit() -> None:
    [_, actions] = button_blocks("x", [{"title": "y" * 200, "payload": "/affirm"}])
    assert len(actions["elements"][0]["text"]["text"]) == 75


async def test_every_message_goes_into_the_conversations_thread_without_link_previews() -> None:
    client = RecordingClient()
    output = SlackThreadOutput(client)  # type: ignore[arg-type]
    conversation = conversation_id("T1", "D2", "1700000000.000100")
    await output.send_text_message(conversation, "Hi <there> & welcome")
    await output.send_text_with_buttons(conversation, "Pick one", [{"title": "Yes", "payload": "/affirm"}])
    for post in client.posts:
        assert post["channel"] == "D2" and post["thread_ts"] == "1700000000.000100"
        assert post["unfurl_links"] is False and post["unfurl_media"] is False
    assert client.posts[0]["text"] == "Hi &lt;there&gt; &amp; welcome"
    assert client.posts[1]["blocks"][1]["elements"][0]["value"] == "/affirm"


async def test_the_credential_form_becomes_a_link_never_fields_in_slack() -> None:
    client = RecordingClient()
    output = SlackThreadOutput(client)  # type: ignore[arg-type]
    payload = {
        "type": "keymedic_credential_form",
        "form_url": "http://127.0.0.1:8080/intake/form?token=it_abc",
        "submit_url": "http://127.0.0.1:8080/intake/credentials",
        "token": "it_abc",
        "fields": [{"name": "api_secret", "type": "password"}],
    }
    await output.send_custom_json(conversation_id("T1", "D2", "1.2"), payload)
    [post] = client.posts
    [button] = post["blocks"][1]["elements"]
    assert button["url"] == payload["form_url"]
    assert "api_secret" not in str(post) and "submit_url" not in str(post)


FORM_TOKEN = "it_" + "F" * 40 + "a1_"
FORM = {
    "type": "keymedic_credential_form",
    "form_url": f"http://127.0.0.1:8080/intake/form#token={FORM_TOKEN}",
    "token": FORM_TOKEN,
}


async def test_in_a_channel_thread_the_form_link_goes_only_to_the_user_who_asked() -> None:
    # Issue 15: a form link posted into a channel thread could be opened by anyone in the channel.
    client = RecordingClient()
    output = SlackThreadOutput(client, user="U0ALICE")  # type: ignore[arg-type]
    conversation = conversation_id("T1", "C0SUPPORT", "1.2")
    await output.send_text_message(conversation, f"Enter it in this secure form: {FORM['form_url']} (10 min)")
    await output.send_custom_json(conversation, FORM)
    assert FORM_TOKEN not in str(client.posts)
    [private] = client.ephemerals
    assert (
        private["user"] == "U0ALICE" and private["channel"] == "C0SUPPORT" and private["thread_ts"] == "1.2"
    )
    assert private["blocks"][1]["elements"][0]["url"] == FORM["form_url"]


async def test_a_form_for_a_channel_thread_with_no_known_user_is_not_posted() -> None:
    # A message Rasa sends on its own (no incoming Slack user): nobody to show it to privately.
    client = RecordingClient()
    output = SlackThreadOutput(client)  # type: ignore[arg-type]
    await output.send_custom_json(conversation_id("T1", "C0SUPPORT", "1.2"), FORM)
    assert FORM_TOKEN not in str(client.posts) and client.ephemerals == []
    assert "direct message" in client.posts[0]["text"]


async def test_in_a_direct_message_the_form_is_a_button_and_the_text_holds_no_link() -> None:
    client = RecordingClient()
    output = SlackThreadOutput(client, user="U0ALICE")  # type: ignore[arg-type]
    conversation = conversation_id("T1", "D2", "1.2")
    await output.send_text_message(conversation, f"Enter it in this secure form: {FORM['form_url']} (10 min)")
    await output.send_custom_json(conversation, FORM)
    text, button = client.posts
    assert FORM_TOKEN not in text["text"] and "secure form" in text["text"]
    assert button["blocks"][1]["elements"][0]["url"] == FORM["form_url"]


async def test_an_unknown_custom_payload_is_not_passed_to_slack_as_arguments() -> None:
    client = RecordingClient()
    output = SlackThreadOutput(client)  # type: ignore[arg-type]
    await output.send_custom_json(
        conversation_id("T1", "D2", "1.2"), {"channel": "C-ELSEWHERE", "as_user": True}
    )
    assert client.posts == []


async def test_a_conversation_of_another_channel_is_never_posted() -> None:
    client = RecordingClient()
    await SlackThreadOutput(client).send_text_message("demo", "hello")  # type: ignore[arg-type]
    assert client.posts == []
