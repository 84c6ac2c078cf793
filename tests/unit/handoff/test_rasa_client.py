"""The Rasa HTTP client the agent API uses, on `httpx.MockTransport`."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.handoff.rasa import RasaConversations, RasaUnavailable, UnaddressableConversation


async def test_an_agent_reply_is_a_bot_event_delivered_through_the_latest_channel() -> None:
    requests: list[httpx.Request] = []

    def rasa_ok(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={})

    rasa = RasaConversations("http://rasa:5005/", token="t0k", transport=httpx.MockTransport(rasa_ok))
    await rasa.send_agent_message("U1_C2_17.5", "Hello from support", agent="sam")
    await rasa.resume("U1_C2_17.5")
    await rasa.aclose()

    reply, resume = requests
    assert reply.method == "POST" and reply.url.path == "/conversations/U1_C2_17.5/tracker/events"
    assert dict(reply.url.params) == {
        "include_events": "NONE",
        "output_channel": "latest",
        "execute_side_effects": "true",
        "token": "t0k",
    }
    assert json.loads(reply.content) == [
        {"event": "bot", "text": "Hello from support", "metadata": {"keymedic_agent": "sam"}}
    ]
    assert json.loads(resume.content) == [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
    assert "output_channel" not in resume.url.params


async def test_a_conversation_id_goes_into_the_path_as_rasa_matches_it() -> None:
    # Rasa's router never percent-decodes: "a%40b" would name another conversation than "a@b".
    paths: list[bytes] = []

    def rasa_ok(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        return httpx.Response(200, json={"events": [{"event": "user", "text": "hi"}, "junk"]})

    rasa = RasaConversations("http://rasa:5005", transport=httpx.MockTransport(rasa_ok))
    events = await rasa.events("slack-T1-C2:1700000000.0001@x/y")
    await rasa.aclose()
    assert paths == [b"/conversations/slack-T1-C2:1700000000.0001@x/y/tracker?include_events=ALL"]
    assert events == [{"event": "user", "text": "hi"}]


@pytest.mark.parametrize("conversation_id", ["a b", "a?b", "a#b", "50%", "caf\u00e9", ""])
async def test_an_id_only_a_percent_escape_could_carry_is_refused(conversation_id: str) -> None:
    rasa = RasaConversations(
        "http://rasa:5005", transport=httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    )
    with pytest.raises(UnaddressableConversation, match="cannot be addressed"):
        await rasa.events(conversation_id)
    await rasa.aclose()


@pytest.mark.parametrize("status", [401, 404, 500])
async def test_a_rasa_error_is_rasa_unavailable(status: int) -> None:
    rasa = RasaConversations(
        "http://rasa:5005", transport=httpx.MockTransport(lambda request: httpx.Response(status))
    )
    with pytest.raises(RasaUnavailable, match=str(status)):
        await rasa.resume("c")
    await rasa.aclose()


async def test_rasa_unreachable_is_rasa_unavailable_without_the_token() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    rasa = RasaConversations("http://rasa:5005", token="t0k", transport=httpx.MockTransport(down))
    with pytest.raises(RasaUnavailable) as failure:
        await rasa.send_agent_message("c", "hi", agent="sam")
    await rasa.aclose()
    assert "t0k" not in str(failure.value)
