"""When the action server hangs, is down or answers an error, the user hears within seconds that something
went wrong on our side, and the failed action adds no events (issue 19). Rasa's own `RemoteAction` against a
real aiohttp server on 127.0.0.1, with `rasa_plugins.action_guard` installed."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from rasa_plugins import action_guard, action_session, startup

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0
Serve = Callable[[str], Awaitable[EndpointConfig]]


@pytest.fixture(autouse=True)
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMEDIC_ACTION_TIMEOUT", str(TIMEOUT_S))
    startup.install()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """An action server that answers as `behaviour` says: ok, hang, error (500) or reject (400)."""
    runners: list[web.AppRunner] = []
    calls: list[str] = []

    async def start(behaviour: str) -> EndpointConfig:
        async def webhook(request: web.Request) -> web.Response:
            calls.append(behaviour)
            if behaviour == "hang":
                await asyncio.sleep(3600)
            if behaviour == "error":
                return web.json_response({"error": "boom"}, status=500)
            if behaviour == "reject":
                return web.json_response({"action_name": "validate_x", "error": "no"}, status=400)
            return web.json_response({"events": [], "responses": [{"text": "done"}]})

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return EndpointConfig(url=f"http://127.0.0.1:{runner.addresses[0][1]}/webhook")

    start.calls = calls  # type: ignore[attr-defined]
    yield start
    await action_session.close_kept_sessions()
    for runner in runners:
        await runner.cleanup()


def _closed_port() -> EndpointConfig:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")


async def _run(endpoint: EndpointConfig, output: CollectingOutputChannel, name: str = "action_x") -> list:
    domain = Domain.empty()
    tracker = DialogueStateTracker("user-1", domain.slots)
    return await RemoteAction(name, endpoint).run(
        output, TemplatedNaturalLanguageGenerator(domain.responses), tracker, domain
    )


def _texts(output: CollectingOutputChannel) -> list[str]:
    return [str(m.get("text")) for m in output.messages]


async def test_a_working_action_server_answers_as_before(serve: Serve) -> None:
    output = CollectingOutputChannel()
    events = await _run(await serve("ok"), output)
    assert [event.text for event in events] == ["done"]
    assert output.messages == []


@pytest.mark.parametrize("behaviour", ["hang", "error", "down"])
async def test_a_failing_action_server_gets_the_user_an_apology_within_the_timeout(
    serve: Serve, behaviour: str
) -> None:
    endpoint = _closed_port() if behaviour == "down" else await serve(behaviour)
    output = CollectingOutputChannel()
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        await _run(endpoint, output)
    # Rasa's `_run_action` catches this and records the action with no events: nothing half-done.
    assert not isinstance(raised.value, ActionExecutionRejection)
    assert time.monotonic() - started < TIMEOUT_S + 0.5
    assert _texts(output) == [action_guard.APOLOGY]
    assert "a person" in action_guard.APOLOGY and "again" in action_guard.APOLOGY


async def test_after_one_failure_the_turns_other_actions_fail_at_once_with_one_apology(serve: Serve) -> None:
    endpoint = await serve("hang")
    output = CollectingOutputChannel()
    with pytest.raises(asyncio.TimeoutError):
        await _run(endpoint, output, "validate_key_update_form")
    started = time.monotonic()
    with pytest.raises(action_guard.ActionServerUnavailable):
        await _run(endpoint, output, "action_check_key")
    assert time.monotonic() - started < 0.1
    assert _texts(output) == [action_guard.APOLOGY]
    assert serve.calls == ["hang"]  # type: ignore[attr-defined]


async def test_a_form_rejecting_the_message_is_no_failure(serve: Serve) -> None:
    output = CollectingOutputChannel()
    with pytest.raises(ActionExecutionRejection):
        await _run(await serve("reject"), output, "validate_x")
    assert output.messages == []


def test_the_timeout_is_seconds_and_longer_than_a_live_key_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import load_settings

    monkeypatch.delenv("KEYMEDIC_ACTION_TIMEOUT")
    assert load_settings().diagnosis_deadline_s < action_guard.action_timeout_s() <= 10
    monkeypatch.setenv("KEYMEDIC_ACTION_TIMEOUT", "nonsense")
    assert action_guard.action_timeout_s() == action_guard.DEFAULT_ACTION_TIMEOUT_S
