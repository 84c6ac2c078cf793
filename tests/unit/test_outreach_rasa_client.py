"""The Rasa client's outreach calls, on `httpx.MockTransport`: the conversation's state without its events,
and trigger_intent with the conversation's latest channel as output."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.handoff.rasa import RasaConversations, RasaUnavailable


def tracker_state(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "sender_id": "w-abc",
            "paused": True,
            "active_loop": {},
            "latest_input_channel": "socketio",
            "latest_event_time": 1700000000.5,
            "events": None,
        },
    )


async def test_state_reads_pause_loop_channel_and_time_without_events() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return tracker_state(request)

    rasa = RasaConversations("http://rasa:5005/", token="t0k", transport=httpx.MockTransport(answer))
    state = await rasa.state("C1/1700000000.0001")
    await rasa.aclose()

    assert (state.paused, state.active_loop, state.latest_input_channel) == (True, None, "socketio")
    assert state.latest_event_time == 1700000000.5 and state.started
    [request] = seen
    assert request.url.raw_path.split(b"?")[0] == b"/conversations/C1/1700000000.0001/tracker"
    assert dict(request.url.params) == {"include_events": "NONE", "token": "t0k"}


async def test_a_conversation_nobody_wrote_in_has_not_started() -> None:
    def fresh(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"paused": False, "active_loop": {"name": "key_update_form"}})

    rasa = RasaConversations("http://rasa:5005", transport=httpx.MockTransport(fresh))
    state = await rasa.state("nobody")
    await rasa.aclose()
    assert not state.started and state.active_loop == "key_update_form" and state.latest_event_time is None


async def test_trigger_intent_posts_the_intent_and_entities_to_the_latest_channel() -> None:
    seen: list[httpx.Request] = []

    def triggered(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"tracker": {}, "messages": [{"recipient_id": "demo", "text": "hi"}]})

    rasa = RasaConversations("http://rasa:5005", transport=httpx.MockTransport(triggered))
    messages = await rasa.trigger_intent(
        "demo", "EXTERNAL_key_failed", {"exchange": "kraken", "wallet_id": "3"}
    )
    await rasa.aclose()

    assert messages == [{"recipient_id": "demo", "text": "hi"}]
    [request] = seen
    assert request.method == "POST" and request.url.path == "/conversations/demo/trigger_intent"
    assert dict(request.url.params) == {"output_channel": "latest", "include_events": "NONE"}
    assert json.loads(request.content) == {
        "name": "EXTERNAL_key_failed",
        "entities": {"exchange": "kraken", "wallet_id": "3"},
    }


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_an_error_answer_is_rasa_unavailable_without_the_url(status: int) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "nope"})

    rasa = RasaConversations("http://rasa:5005", token="secret-token", transport=httpx.MockTransport(refuse))
    with pytest.raises(RasaUnavailable) as raised:
        await rasa.trigger_intent("demo", "EXTERNAL_key_failed", {})
    await rasa.aclose()
    assert str(raised.value) == f"Rasa answered HTTP {status}" and "secret-token" not in str(raised.value)


async def test_an_answer_that_is_not_a_tracker_is_rasa_unavailable() -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy</html>")

    rasa = RasaConversations("http://rasa:5005", transport=httpx.MockTransport(garbage))
    with pytest.raises(RasaUnavailable):
        await rasa.state("demo")
    await rasa.aclose()
