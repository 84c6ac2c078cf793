"""The widget's socket.io channel over a real socket.io client: only the host app's JWT, from an allowed
origin, opens a conversation, and only the user's own (DESIGN §6; issue 6 "Identity")."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio

from bot.assistant import SupportDesk
from bot.redaction import REDACTED
from bot.sandbox.scenarios import credentials_for
from channels.identity import session_id_for
from tests.integration.channels.conftest import WIDGET_ORIGIN, ChannelStack

pytestmark = [pytest.mark.integration, pytest.mark.rasa_model]

DEMO = "demo"
TIMEOUT_S = 30.0


@dataclass
class Widget:
    """A socket.io client as the widget uses it, with every event it received."""

    client: socketio.AsyncClient
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    connect_error: Any = None

    async def next(self, name: str, timeout: float = TIMEOUT_S) -> Any:
        """The next event called `name` (others received meanwhile are dropped)."""
        async with asyncio.timeout(timeout) if hasattr(asyncio, "timeout") else _deadline(timeout):
            while True:
                event, data = await self.events.get()
                if event == name:
                    return data

    async def replies_until(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The bot's messages, until `done` says the answer is complete."""
        replies: list[dict[str, Any]] = []
        while not done(replies):
            replies.append(await self.next("bot_uttered"))
        return replies


@contextlib.asynccontextmanager
async def _deadline(timeout: float) -> AsyncIterator[None]:
    # Python 3.10 has no asyncio.timeout; cancel the waiting task instead.
    task = asyncio.current_task()
    assert task is not None
    handle = asyncio.get_running_loop().call_later(timeout, task.cancel)
    try:
        yield
    except asyncio.CancelledError:
        raise TimeoutError(f"no such event within {timeout} s") from None
    finally:
        handle.cancel()


def _widget() -> Widget:
    client = socketio.AsyncClient(reconnection=False)
    widget = Widget(client)

    async def on_any(event: str, data: Any = None) -> None:
        await widget.events.put((event, data))

    async def on_connect_error(data: Any) -> None:
        widget.connect_error = data

    async def on_disconnect(*args: Any) -> None:
        await widget.events.put(("disconnect", None))

    client.on("*", on_any)
    client.on("connect_error", on_connect_error)
    client.on("disconnect", on_disconnect)
    return widget


async def _close(widget: Widget) -> None:
    # aiohttp 3.9 (Rasa's pin) is too old for python-engineio's websocket client, so these tests poll. A
    # polite polling disconnect waits for the open long-poll, up to the server's 25 s ping interval: say
    # goodbye to the namespaces, then drop the transport without waiting.
    client = widget.client
    if client.connected:
        for namespace in list(client.namespaces):
            await client._send_packet(client.packet_class(socketio.packet.DISCONNECT, namespace=namespace))
    await client.eio.disconnect(abort=True)
    reader = getattr(client.eio, "read_loop_task", None)
    if reader is not None and not reader.done():
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
    await client.eio._reset()


@contextlib.asynccontextmanager
async def connected(
    stack: ChannelStack, *, token: str | None, origin: str | None = WIDGET_ORIGIN
) -> AsyncIterator[Widget]:
    widget = _widget()
    await widget.client.connect(
        stack.rasa_url,
        headers={"Origin": origin} if origin else {},
        auth={"token": token} if token is not None else None,
        transports=["polling"],
        socketio_path="/socket.io",
        wait_timeout=10,
    )
    try:
        yield widget
    finally:
        await _close(widget)


async def _refusal(stack: ChannelStack, *, token: str | None, origin: str | None = WIDGET_ORIGIN) -> str:
    """The code the server refused the connection with."""
    widget = _widget()
    attempt = asyncio.ensure_future(
        widget.client.connect(
            stack.rasa_url,
            headers={"Origin": origin} if origin else {},
            auth={"token": token} if token is not None else None,
            transports=["polling"],
            socketio_path="/socket.io",
            wait_timeout=10,
        )
    )
    # The client raises only after its own polite (long-poll long) disconnect; the refusal is known sooner.
    for _ in range(200):
        if widget.connect_error is not None or attempt.done():
            break
        await asyncio.sleep(0.05)
    assert not widget.client.connected, "the connection was accepted"
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError, socketio.exceptions.ConnectionError):
        await attempt
    await _close(widget)
    error = widget.connect_error
    return str(error.get("message") if isinstance(error, dict) else error)


# -- refusals ----------------------------------------------------------------------------------------------


async def test_a_connection_without_a_token_is_refused(channel_stack: ChannelStack) -> None:
    assert await _refusal(channel_stack, token=None) == "missing_token"


async def test_an_expired_token_is_refused(channel_stack: ChannelStack) -> None:
    expired = channel_stack.token(DEMO, expires_in=-120)
    assert await _refusal(channel_stack, token=expired) == "token_expired"


async def test_a_forged_token_is_refused(channel_stack: ChannelStack) -> None:
    forged = channel_stack.token(DEMO, secret="an attacker's key, long enough for HS256 anyway!")
    assert await _refusal(channel_stack, token=forged) == "invalid_token"


async def test_a_token_for_another_audience_is_refused(channel_stack: ChannelStack) -> None:
    other = channel_stack.token(DEMO, audience="keymedic-agent-api")
    assert await _refusal(channel_stack, token=other) == "invalid_token"


async def test_a_page_from_another_origin_is_refused_even_with_a_valid_token(
    channel_stack: ChannelStack,
) -> None:
    token = channel_stack.token(DEMO)
    assert await _refusal(channel_stack, token=token, origin="https://evil.example") == "origin_not_allowed"
    assert await _refusal(channel_stack, token=token, origin=None) == "origin_not_allowed"


async def test_asking_for_another_users_session_is_refused(channel_stack: ChannelStack) -> None:
    async with connected(channel_stack, token=channel_stack.token(DEMO)) as widget:
        await widget.client.emit("session_request", {"session_id": session_id_for("someone-else")})
        assert await widget.next("session_refused") == {"reason": "not_your_session"}
        await widget.next("disconnect")


async def test_a_message_into_another_users_session_is_refused(channel_stack: ChannelStack) -> None:
    victim = session_id_for("someone-else")
    async with connected(channel_stack, token=channel_stack.token(DEMO)) as widget:
        await widget.client.emit("user_uttered", {"message": "hi", "session_id": victim})
        assert await widget.next("session_refused") == {"reason": "not_your_session"}
    assert victim.encode() not in channel_stack.stored_bytes()


# -- a verified user -----------------------------------------------------------------------------------------


async def test_a_valid_token_gets_the_users_own_conversation_and_answers(channel_stack: ChannelStack) -> None:
    async with connected(channel_stack, token=channel_stack.token(DEMO)) as widget:
        await widget.client.emit("session_request", {"session_id": None})
        session_id = await widget.next("session_confirm")
        assert session_id == session_id_for(DEMO)

        await widget.client.emit("user_uttered", {"message": "hello", "session_id": session_id})
        reply = await widget.next("bot_uttered")
        assert reply.get("text")


async def test_the_widget_user_is_the_keymedic_user_the_actions_see(channel_stack: ChannelStack) -> None:
    # The credential form names the demo user's own Kraken wallet: SupportDesk found the user from the
    # channel identity `socketio:<session id>` the channel linked on connect.
    desk = SupportDesk(channel_stack.settings)
    kraken = {w.exchange: w.wallet_id for w in await desk.wallets("rest", DEMO)}["kraken"]
    assert [w.wallet_id for w in await desk.wallets("socketio", session_id_for(DEMO))] == [
        w.wallet_id for w in await desk.wallets("rest", DEMO)
    ]
    async with connected(channel_stack, token=channel_stack.token(DEMO)) as widget:
        await widget.client.emit("user_uttered", {"message": "/restart"})
        await widget.client.emit("user_uttered", {"message": "my kraken wallet says the api key is invalid"})
        replies = await widget.replies_until(lambda rs: any("custom" in r for r in rs))
    form = next(r["custom"] for r in replies if "custom" in r)
    assert form["wallet_id"] == kraken


async def test_a_secret_pasted_in_the_widget_is_redacted_and_the_user_warned(
    channel_stack: ChannelStack,
) -> None:
    secret = credentials_for("okx", "valid")["api_secret"]
    async with connected(channel_stack, token=channel_stack.token(DEMO)) as widget:
        await widget.client.emit("user_uttered", {"message": f"my okx secret is {secret}"})
        first = await widget.next("bot_uttered")
        await widget.next("bot_uttered")  # the bot's own answer: the message has been handled
    assert "was not stored" in first["text"] and "revoke" in first["text"]
    # Rasa saves the tracker after it has sent the answer.
    for _ in range(100):
        stored = channel_stack.stored_bytes()
        if b"my okx secret is" in stored:
            break
        await asyncio.sleep(0.1)
    assert secret.encode() not in stored
    assert f"my okx secret is {REDACTED}".encode() in stored
    assert secret.encode() not in channel_stack.rasa_log.read_bytes()


async def test_a_message_over_the_size_limit_is_refused_with_the_limit_and_never_stored(
    channel_stack: ChannelStack,
) -> None:
    from channels.screening import MAX_MESSAGE_CHARS, TOO_LONG

    user = f"big-{secrets.token_hex(4)}"
    async with connected(channel_stack, token=channel_stack.token(user)) as widget:
        await widget.client.emit("user_uttered", {"message": "word " * (MAX_MESSAGE_CHARS // 4)})
        answer = await widget.next("bot_uttered")
        turn = await widget.next("keymedic_turn")
    assert answer["text"] == TOO_LONG
    assert turn == {"paused": False}
    assert b"word word word" not in channel_stack.stored_bytes()


async def test_the_socket_caps_one_packet_far_below_a_megabyte(channel_stack: ChannelStack) -> None:
    from channels.socketio import SOCKETIO_MAX_PAYLOAD_BYTES

    assert SOCKETIO_MAX_PAYLOAD_BYTES < 200_000
    # A packet over the cap is not read: the server drops the connection (the widget reconnects).
    async with connected(channel_stack, token=channel_stack.token(f"huge-{secrets.token_hex(4)}")) as widget:
        await widget.client.emit("user_uttered", {"message": "x" * (SOCKETIO_MAX_PAYLOAD_BYTES + 1)})
        async with _deadline(15):
            await widget.next("disconnect")
