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
from channels.identity import ALGORITHM, TokenRefused, WidgetIdentity, WidgetTokenVerifier
from channels.screening import NOTICE, screen

__all__ = ["VerifiedSocketIOInput", "WidgetOutput", "LinkUser", "StoreLinker", "CHANNEL"]

logger = logging.getLogger(__name__)

CHANNEL: Final = "socketio"
# Links a widget conversation to its KeyMedic user: (user handle, session id).
LinkUser = Callable[[str, str], Awaitable[None]]
_SESSION_KEY: Final = "keymedic_identity"


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
    """Rasa's socket.io output, except for custom payloads (the credential form) and link buttons.

    Rasa 3.6 emits a custom payload as `sio.emit(event, **payload)`, so any key but `data`/`room` is a
    TypeError; the widget gets `{"custom": payload}` instead, the shape the REST channel answers with.
    """

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        # Rasa's version reads `button["payload"]`, so a link button (`{"title", "url"}`, the credential
        # form's link) raised KeyError; a link is a `web_url` quick reply here.
        parts = text.strip().split("\n\n") or [text]
        messages: list[dict[str, Any]] = [{"text": part, "quick_replies": []} for part in parts]
        messages[-1]["quick_replies"] = [
            {"content_type": "web_url", "title": b.get("title", ""), "url": b["url"]}
            if "url" in b and "payload" not in b
            else {"content_type": "text", "title": b.get("title", ""), "payload": b.get("payload", "")}
            for b in buttons
        ]
        for message in messages:
            await self._send_message(recipient_id, message)


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
        if not verifier.configured:
            logger.error(
                "the widget's socket.io channel refuses every connection: KEYMEDIC_WIDGET_JWT_SECRET is "
                "not set or shorter than 32 bytes (docs/channels.md)"
            )

    def get_output_channel(self) -> OutputChannel | None:
        """The output for messages Rasa sends on its own (reminders, the agent API's relayed replies)."""
        return WidgetOutput(self.sio, self.bot_message_evt) if self.sio is not None else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's socket.io blueprint, with KeyMedic's handlers in place of Rasa's."""
        webhook: Blueprint = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
        namespace = self.namespace

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
            screened = screen(data.get("message", ""), data.get(self.metadata_key or "metadata"))
            text = screened.text if isinstance(screened.text, str) else ""
            output = WidgetOutput(sio, self.bot_message_evt)
            if screened.kinds:
                await output.send_text_message(identity.session_id, NOTICE)
            await on_new_message(
                UserMessage(
                    text,
                    output,
                    identity.session_id,
                    input_channel=self.name(),
                    metadata=screened.metadata,
                )
            )

        sio.on("connect", connect, namespace=namespace)
        sio.on("disconnect", disconnect, namespace=namespace)
        sio.on("session_request", session_request, namespace=namespace)
        sio.on(self.user_message_evt, handle_message, namespace=namespace)
        return webhook
