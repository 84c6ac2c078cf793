"""`VerifiedSocketIOInput`: the chat widget's socket.io channel, with verified identity (DESIGN §6).

Built on Rasa 3.6's `SocketIOInput`: its blueprint, socket.io server, health route and `SocketIOOutput` are
kept; its `connect`, `session_request` and message handlers are replaced, because Rasa's only check that a
JWT decodes (no audience, no identity, no Origin) and let the client choose the conversation.

- **connect** needs an allowed `Origin` header (`KEYMEDIC_WIDGET_ORIGINS`) and `auth={"token": <JWT>}`
  (`channels.identity`). Refusals are socket.io connect errors whose message is a code: `origin_not_allowed`,
  `missing_token`, `invalid_token`, `token_expired`, `widget_not_configured`, `unavailable`.
- The conversation is `identity.session_id_for(sub)`, bound to the socket; the socket joins that room, so
  every tab of the user gets the bot's replies. The channel identity `socketio:<session id>` is linked to the
  KeyMedic user `sub` (`bot.store.services.link_identity`), which is how `SupportDesk` finds the user from
  `tracker.get_latest_input_channel()` and the sender id.
- **session_request** confirms that session id. A client asking for any other one (a stale id from another
  sign-in, or someone else's) gets `session_refused` and is disconnected; so is a message naming another
  session id.
- A socket lives no longer than its token: a message after `exp` gets `session_expired` and a disconnect;
  the widget reconnects with a fresh token (socket.io's `auth` callback).
- Every message is redacted (`channels.screening`) before Rasa sees it.
- For the widget (docs/widget.md): after `session_confirm` the socket gets `keymedic_history`
  (`{"messages": [...], "paused": bool}`, the conversation rebuilt from the tracker store, so a page reload
  loses nothing); after each handled message the user's room gets `keymedic_turn` (`{"paused": bool}`: the
  turn is over, and whether a person has taken over); bot messages carry their event's `timestamp`, and an
  agent's reply relayed by the agent API carries `agent`; a sender whose message was redacted gets
  `keymedic_redacted` (`{"text": <the redacted text>}`) so their own bubble stops showing the secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint
from socketio.exceptions import ConnectionRefusedError as SocketConnectionRefused  # type: ignore[import-untyped]

from bot.config import Settings, load_settings
from bot.handoff.transcript import AGENT_METADATA_KEY
from bot.web.widget.history import history_entries, quick_replies
from channels.failure import NOT_SAVED, NOT_SAVED_CODE, log_failed_turn
from channels.identity import ALGORITHM, TokenRefused, WidgetIdentity, WidgetTokenVerifier
from channels.screening import MAX_MESSAGE_CHARS, MAX_METADATA_CHARS, NOTICE, refusal, screen

__all__ = ["VerifiedSocketIOInput", "WidgetOutput", "LinkUser", "StoreLinker", "CHANNEL"]

logger = logging.getLogger(__name__)

CHANNEL: Final = "socketio"
# Links a widget conversation to its KeyMedic user: (user handle, session id).
LinkUser = Callable[[str, str], Awaitable[None]]
_SESSION_KEY: Final = "keymedic_identity"
# One Engine.IO packet: a message at the limit, its metadata at theirs, and room for JSON escapes (\uXXXX).
SOCKETIO_MAX_PAYLOAD_BYTES: Final = 6 * (MAX_MESSAGE_CHARS + MAX_METADATA_CHARS)


class StoreLinker:
    """Links `socketio:<session id>` to the KeyMedic user in the store (the user is created when new: the
    host app vouches for them, and a user without wallets sees no account data)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._database: Any = None
        self._linked: set[str] = set()

    def _link(self, user: str, session_id: str) -> None:
        # Imported here: building the channel (Rasa's start-up, tests) must not open a database.
        from bot.store import services
        from bot.store.crypto import load_key_ring
        from bot.store.db import create_database
        from bot.store.unit_of_work import SqlAlchemyUnitOfWork

        settings = self._settings or load_settings()
        if self._database is None:
            self._database = create_database(settings.database_url)
        uow = SqlAlchemyUnitOfWork(self._database, load_key_ring(settings))
        with uow:
            record = services.ensure_user(uow, user)
            services.link_identity(uow, record, channel=CHANNEL, external_id=session_id)
            uow.commit()

    async def __call__(self, user: str, session_id: str) -> None:
        if session_id in self._linked:
            return
        # SQLAlchemy here is synchronous; keep it off Rasa's event loop.
        await asyncio.to_thread(self._link, user, session_id)
        self._linked.add(session_id)


class WidgetOutput(SocketIOOutput):
    """Rasa's socket.io output, except for custom payloads (the credential form) and link buttons, and with
    each message's `timestamp` (and `agent` for an agent's reply) so the widget can tell them apart.

    Rasa 3.6 emits a custom payload as `sio.emit(event, **payload)`, so any key but `data`/`room` is a
    TypeError; the widget gets `{"custom": payload}` instead, the shape the REST channel answers with.
    """

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """One bot event: its text parts (buttons on the last), then its custom payload, image, attachment."""
        extra: dict[str, Any] = {}
        if isinstance(message.get("timestamp"), (int, float)):
            extra["timestamp"] = message["timestamp"]
        if message.get(AGENT_METADATA_KEY):
            extra["agent"] = str(message[AGENT_METADATA_KEY])
        text = message.get("text") or ""
        buttons = message.get("quick_replies") or message.get("buttons") or []
        parts: list[dict[str, Any]] = []
        if text or buttons:
            parts.extend(_text_parts(text, buttons))
        if message.get("custom"):
            parts.append({"custom": message["custom"]})
        if message.get("image"):
            parts.append({"attachment": {"type": "image", "payload": {"src": message["image"]}}})
        if message.get("attachment"):
            parts.append({"attachment": message["attachment"]})
        for element in message.get("elements") or []:
            parts.append({"attachment": {"type": "template", "payload": {"elements": element}}})
        for part in parts:
            await self._send_message(recipient_id, {**part, **extra})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        for message in _text_parts(text, buttons):
            await self._send_message(recipient_id, message)


def _text_parts(text: str, buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # As Rasa's socket.io output: one message per paragraph, the buttons on the last. Rasa's version reads
    # `button["payload"]`, so a link button (`{"title", "url"}`, the credential form's link) raised KeyError;
    # a link is a `web_url` quick reply here.
    parts = text.strip().split("\n\n") or [text]
    messages: list[dict[str, Any]] = [{"text": part} for part in parts]
    if buttons:
        messages[-1]["quick_replies"] = quick_replies(buttons)
    return messages


def share_rooms_through_redis(sio: Any, settings: Settings) -> None:
    """Several Rasa replicas (docs/deploy.md): with `KEYMEDIC_SOCKETIO_REDIS_URL` set, the socket.io server's
    rooms are shared through Redis pub/sub (python-socketio's AsyncRedisManager), so an emit to a
    conversation's room (a reply, an agent's message relayed by another replica) reaches the widget's socket
    whichever replica holds it. Unset: one replica, rooms in memory, as before.

    Called before the server accepts a connection: the manager is initialised on the first one."""
    if not settings.socketio_redis_url:
        return
    from socketio import AsyncRedisManager  # type: ignore[import-untyped]

    # The channel is named by the deployment, so two deployments on one Redis never see each other's emits.
    manager = AsyncRedisManager(settings.socketio_redis_url, channel=f"{settings.redis_namespace}-socketio")
    sio.manager = manager
    manager.set_server(sio)


class VerifiedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel where the host app's JWT, not the client, says who is talking."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        if credentials.get("jwt_key"):
            # A signing key in a YAML file ends up in the repository; it comes from the environment.
            raise ValueError("set KEYMEDIC_WIDGET_JWT_SECRET instead of jwt_key in credentials.yml")
        if credentials.get("jwt_method", ALGORITHM) != ALGORITHM:
            raise ValueError(f"the widget channel accepts {ALGORITHM} tokens only (docs/channels.md)")
        settings = load_settings()
        return cls(
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            namespace=credentials.get("namespace"),
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            metadata_key=credentials.get("metadata_key", "metadata"),
            verifier=WidgetTokenVerifier(settings.widget_jwt_secret, settings.widget_jwt_audience),
            allowed_origins=settings.widget_allowed_origins,
            link_user=StoreLinker(settings),
        )

    def __init__(
        self,
        user_message_evt: str = "user_uttered",
        bot_message_evt: str = "bot_uttered",
        namespace: str | None = None,
        socketio_path: str | None = "/socket.io",
        metadata_key: str | None = "metadata",
        *,
        verifier: WidgetTokenVerifier,
        allowed_origins: tuple[str, ...],
        link_user: LinkUser,
    ) -> None:
        # Rasa's `jwt_key` stays set so anything asking Rasa's channel "is a JWT required?" hears yes; the
        # check itself is `verifier`'s. Sessions always persist: the conversation is the user's.
        super().__init__(
            user_message_evt,
            bot_message_evt,
            namespace,
            session_persistence=True,
            socketio_path=socketio_path,
            jwt_key="verified-by-keymedic" if verifier.configured else None,
            jwt_method=ALGORITHM,
            metadata_key=metadata_key,
        )
        self.verifier = verifier
        self.allowed_origins = frozenset(allowed_origins)
        self.link_user = link_user
        # Rasa's Sanic app, once it starts: its `ctx.agent` holds the tracker store the history comes from.
        self._app: Any = None
        if not verifier.configured:
            logger.error(
                "the widget's socket.io channel refuses every connection: KEYMEDIC_WIDGET_JWT_SECRET is "
                "not set or shorter than 32 bytes (docs/channels.md)"
            )

    def get_output_channel(self) -> OutputChannel | None:
        """The output for messages Rasa sends on its own (reminders, the agent API's relayed replies)."""
        return WidgetOutput(self.sio, self.bot_message_evt) if self.sio is not None else None

    async def _tracker(self, session_id: str, *, full: bool) -> Any:
        """The conversation's tracker from Rasa's tracker store, or None (no app yet, none stored, or the
        store failed: the widget then just shows no history, and the chat itself still works)."""
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return None
        try:
            if full:
                return await store.retrieve_full_tracker(session_id)
            return await store.retrieve(session_id)
        except Exception as error:
            logger.warning("widget: reading the conversation failed (%s)", type(error).__name__)
            return None

    async def history(self, session_id: str) -> dict[str, Any]:
        """What `keymedic_history` carries: the conversation's messages, and whether a person took over."""
        tracker = await self._tracker(session_id, full=True)
        if tracker is None:
            return {"messages": [], "paused": False}
        events = [event.as_dict() for event in tracker.events]
        return {"messages": history_entries(events), "paused": bool(tracker.is_paused())}

    async def paused(self, session_id: str) -> bool:
        """Whether the bot is paused for a hand-off (`ConversationPaused`) in this conversation."""
        tracker = await self._tracker(session_id, full=False)
        return bool(tracker is not None and tracker.is_paused())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's socket.io blueprint, with KeyMedic's handlers in place of Rasa's."""
        webhook: Blueprint = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
        # Engine.IO's own limit on one packet (1 MB by default) is what a hostile client could make the server
        # read and parse; a message the channel accepts needs far less (`SOCKETIO_MAX_PAYLOAD_BYTES`).
        sio.eio.max_http_buffer_size = SOCKETIO_MAX_PAYLOAD_BYTES
        share_rooms_through_redis(sio, load_settings())
        namespace = self.namespace

        async def remember_app(app: Any, loop: Any) -> None:
            self._app = app

        webhook.listener("after_server_start")(remember_app)

        async def refuse(sid: str, event: str, reason: str) -> None:
            await sio.emit(event, {"reason": reason}, room=sid, namespace=namespace)
            await sio.disconnect(sid, namespace=namespace)

        async def identity_of(sid: str) -> WidgetIdentity | None:
            session = await sio.get_session(sid, namespace=namespace)
            identity = session.get(_SESSION_KEY) if isinstance(session, dict) else None
            return identity if isinstance(identity, WidgetIdentity) else None

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
            origin = environ.get("HTTP_ORIGIN", "")
            if origin not in self.allowed_origins:
                # Browsers always send Origin on a cross-site socket: a page elsewhere cannot ride a token.
                logger.info("widget connection refused: origin_not_allowed")
                raise SocketConnectionRefused("origin_not_allowed")
            token = auth.get("token") if isinstance(auth, dict) else None
            try:
                identity = self.verifier.verify(token)
            except TokenRefused as refused:
                logger.info("widget connection refused: %s", refused.code)
                raise SocketConnectionRefused(refused.code) from None
            try:
                await self.link_user(identity.user, identity.session_id)
            except Exception as error:
                # Without the link the user would look like a stranger; say so rather than half-work.
                logger.error("widget connection refused: linking the user failed (%s)", type(error).__name__)
                raise SocketConnectionRefused("unavailable") from None
            await sio.save_session(sid, {_SESSION_KEY: identity}, namespace=namespace)
            await sio.enter_room(sid, identity.session_id, namespace=namespace)
            logger.debug("widget socket %s joined conversation %s", sid, identity.session_id)
            return True

        async def disconnect(sid: str, reason: Any = None) -> None:
            logger.debug("widget socket %s disconnected", sid)

        async def session_request(sid: str, data: Any) -> None:
            identity = await identity_of(sid)
            if identity is None:
                await sio.disconnect(sid, namespace=namespace)
                return
            requested = data.get("session_id") if isinstance(data, dict) else None
            if requested and requested != identity.session_id:
                logger.info("widget session refused: not the user's conversation")
                await refuse(sid, "session_refused", "not_your_session")
                return
            await sio.emit("session_confirm", identity.session_id, room=sid, namespace=namespace)
            # The conversation so far, so a reloaded page (or a second tab) shows it (docs/widget.md).
            history = await self.history(identity.session_id)
            await sio.emit("keymedic_history", history, room=sid, namespace=namespace)

        async def handle_message(sid: str, data: Any) -> None:
            identity = await identity_of(sid)
            if identity is None:
                await sio.disconnect(sid, namespace=namespace)
                return
            if self.verifier.expired(identity):
                await refuse(sid, "session_expired", "token_expired")
                return
            if not isinstance(data, dict):
                return
            requested = data.get("session_id")
            if requested and requested != identity.session_id:
                logger.info("widget message refused: not the user's conversation")
                await refuse(sid, "session_refused", "not_your_session")
                return
            output = WidgetOutput(sio, self.bot_message_evt)
            metadata = data.get(self.metadata_key or "metadata")
            refused = refusal(data.get("message", ""), metadata)
            if refused is not None:
                # Answered here, before redaction and NLU read it (issue 19); the turn is over at once.
                await output.send_text_message(identity.session_id, refused)
                turn = {"paused": await self.paused(identity.session_id)}
                await sio.emit("keymedic_turn", turn, room=sid, namespace=namespace)
                return
            screened = screen(data.get("message", ""), metadata)
            text = screened.text if isinstance(screened.text, str) else ""
            if screened.kinds:
                # The sender's own bubble still shows what they pasted: give the widget the redacted text.
                await sio.emit("keymedic_redacted", {"text": text}, room=sid, namespace=namespace)
                await output.send_text_message(identity.session_id, NOTICE)
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        output,
                        identity.session_id,
                        input_channel=self.name(),
                        metadata=screened.metadata,
                    )
                )
            except Exception as error:
                # The turn was not stored: the user must not believe it went through (issue 19).
                log_failed_turn(self.name(), error)
                await output.send_text_message(identity.session_id, NOT_SAVED)
                await sio.emit("keymedic_error", {"error": NOT_SAVED_CODE}, room=sid, namespace=namespace)
            finally:
                # The turn is over (the widget stops its typing indicator even when the bot said nothing, as
                # while a person has taken over), and whether the bot is paused for a hand-off.
                turn = {"paused": await self.paused(identity.session_id)}
                await sio.emit("keymedic_turn", turn, room=identity.session_id, namespace=namespace)

        sio.on("connect", connect, namespace=namespace)
        sio.on("disconnect", disconnect, namespace=namespace)
        sio.on("session_request", session_request, namespace=namespace)
        sio.on(self.user_message_evt, handle_message, namespace=namespace)
        return webhook
