"""Rasa's HTTP API takes its token (`--auth-token`, DESIGN §8) while the channel webhooks stay open.

Without the token, whoever reaches Rasa could read a user's chat (and any live intake token in it) from the
tracker, act as the user with trigger_intent, or load another model with PUT /model. The REST channel and the
widget's socket.io answer as before; Slack's webhook is exercised with the token in force by
test_slack_channel.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from channels.identity import session_id_for
from tests.integration.channels.conftest import ChannelStack
from tests.integration.channels.test_socketio_channel import DEMO, connected

pytestmark = [pytest.mark.integration, pytest.mark.rasa_model]

USER = "api-token-user"


def _doors(conversation: str) -> list[tuple[str, str, object]]:
    return [
        ("GET", f"/conversations/{conversation}/tracker", None),
        ("POST", f"/conversations/{conversation}/trigger_intent", {"name": "greet"}),
        ("POST", f"/conversations/{conversation}/tracker/events", {"event": "bot", "text": "forged"}),
        ("PUT", "/model", {"model_file": "/tmp/someone-elses-model.tar.gz"}),
        ("POST", "/model/parse", {"text": "hi"}),
        ("GET", "/status", None),
    ]


async def test_rasas_api_refuses_every_call_without_its_token_while_the_channels_answer(
    channel_stack: ChannelStack,
) -> None:
    # The widget's channel: a verified user's conversation, over socket.io with no Rasa token at all.
    async with connected(channel_stack, token=channel_stack.token(DEMO)) as widget:
        await widget.client.emit("session_request", {"session_id": None})
        conversation = await widget.next("session_confirm")
        await widget.client.emit("user_uttered", {"message": "hi", "session_id": conversation})
        assert (await widget.next("bot_uttered")).get("text")
    assert conversation == session_id_for(DEMO)
    # The REST channel of a local run.
    assert channel_stack.say(USER, "hi")

    with httpx.Client(base_url=channel_stack.rasa_url, timeout=30, trust_env=False) as rasa:
        for method, path, body in _doors(conversation):
            for params in ({}, {"token": "wrong-" + channel_stack.rasa_token}):
                refused = rasa.request(method, path, params=params, json=body)
                assert refused.status_code == 401, (method, path, refused.text)
                assert "hi" not in refused.text
        # With the token, the API is the one KeyMedic's callers use.
        token = {"token": channel_stack.rasa_token}
        tracker = rasa.get(f"/conversations/{conversation}/tracker", params=token)
        assert tracker.status_code == 200
        assert [e["text"] for e in tracker.json()["events"] if e.get("event") == "user"][-1] == "hi"
        assert rasa.get("/status", params=token).json()["model_file"]


def test_rasas_token_is_not_on_its_command_line(channel_stack: ChannelStack) -> None:
    """`ps` shows every user the command line; the token goes in through the environment instead."""
    port = str(channel_stack.settings.rasa_port).encode()
    rasa = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rasa_plugins.run" in argv and port in argv:
            rasa.append(argv)
    assert rasa, "the Rasa server of this stack was not found"
    for argv in rasa:
        assert channel_stack.rasa_token.encode() not in b" ".join(argv)
        assert b"--auth-token" not in argv
