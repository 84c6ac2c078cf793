"""`KeyMedicSlackInput`: Rasa's Slack connector, made safe for a product that handles exchange keys.

Built on Rasa 3.6's `SlackInput` (DESIGN §6; docs/slack.md). What it changes, and why:

- **Signed requests only.** Every request to `/webhooks/slack/webhook` must carry Slack's v0 signature of
  its raw body, made no more than five minutes ago (`channels.slack_signature`); anything else gets 401.
  The signing secret and bot token come from the environment (`KEYMEDIC_SLACK_SIGNING_SECRET`,
  `KEYMEDIC_SLACK_BOT_TOKEN`), never from a YAML file. Neither set: the channel is off (404) so a local run
  starts without Slack; one without the other: Rasa refuses to start.
- **One conversation per thread.** The conversation id is `slack-<team>-<channel>-<thread ts>`
  (`channels.slack_output.conversation_id`); a top-level message (a DM, or a mention in a channel) starts a
  thread under itself, and every answer goes into that thread — also an agent's reply relayed by the agent
  API, because the output channel reads the thread back from the conversation id.
- **Each delivery acts once.** Slack retries an event it thinks was lost (`X-Slack-Retry-Num`), sends one
  channel message as both `app_mention` and `message`, and a user can click a button twice. The event id,
  the message and the clicked message are recorded in the database (`bot.store.slack.first_delivery`), so
  a repeat is acknowledged and dropped, on any replica.
- **The Slack user must be linked.** A Slack user is resolved to a KeyMedic user through the linked
  identities; an unlinked one gets, privately (ephemeral), a one-time link, and nothing reaches the bot, so
  no account data can be shown. Whoever opens the link signed in is shown a code; the link is made only when
  this Slack user sends that code in its DM (`bot.store.slack.redeem_link_code`), so both ends are proven.
  A thread is the conversation of the user who opened it; someone else writing in it is told to open their
  own.
- **Secrets redacted**, like every channel (`channels.screening`): the text is screened before Rasa sees
  it, and the user is told first, in the thread, that it was not stored and to revoke the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any, Final

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.slack import SlackInput
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings, load_settings
from bot.store.slack import code_candidate
from channels.failure import NOT_SAVED, log_failed_turn
from channels.screening import NOTICE, refusal, screen
from channels.slack_output import CHANNEL, SlackThreadOutput, conversation_id, escape
from channels.slack_signature import SignatureRefused, SlackSignatureVerifier
from channels.slack_store import Resolution, SlackDirectory

__all__ = [
    "KeyMedicSlackInput",
    "LINK_PROMPT",
    "NO_CODE_WAITING",
    "CODE_ACCEPTED",
    "CODE_REFUSED",
    "NOT_YOUR_THREAD",
]

logger = logging.getLogger(__name__)

LINK_PROMPT: Final = (
    "I don't know which KeyMedic account is yours yet, so I can't look at any wallet for you. To link this "
    "Slack account, open the button below and sign in to KeyMedic (the link works once, for 15 minutes): "
    "the page shows a code. Send me that code here, in our direct message."
)
NO_CODE_WAITING: Final = (
    "No link code is waiting for this Slack account (a code works once, for 10 minutes). Open the button "
    "below, signed in to KeyMedic, to get one."
)
CODE_ACCEPTED: Final = (
    "Linked: this Slack account now acts for the KeyMedic account {handle}. Message me again to start. "
    "The account can remove the link at any time."
)
CODE_REFUSED: Final = {
    "wrong_code": (
        "That is not the code KeyMedic showed for this Slack account. Check it and send it again; after 5 "
        "wrong codes it stops working and you need a new link."
    ),
    "already_linked": "This Slack account is linked to another KeyMedic account. Contact support.",
}
NOT_YOUR_THREAD: Final = (
    "This thread is someone else's conversation with KeyMedic. Send me a direct message, or mention me in a "
    "new message, to start your own."
)
# Slack's mark-up for the three characters it escapes in message text ("Formatting text for app surfaces").
_UNESCAPE: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"


def _unescape(text: str) -> str:
    for escaped, plain in _UNESCAPE:
        text = text.replace(escaped, plain)
    return text


def _media_type(request: Request) -> str:
    return str(request.headers.get("content-type", "")).split(";")[0].strip().lower()


class KeyMedicSlackInput(SlackInput):
    """Rasa's Slack channel with verified requests, thread conversations, linked users and redaction."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> KeyMedicSlackInput:
        credentials = credentials or {}
        for key in ("slack_token", "slack_signing_secret"):
            if credentials.get(key):
                # A token or secret in a YAML file ends up in the repository.
                raise InvalidConfigException(
                    f"set KEYMEDIC_SLACK_BOT_TOKEN / KEYMEDIC_SLACK_SIGNING_SECRET instead of {key} in the "
                    "credentials file (docs/slack.md)"
                )
        return cls.from_settings(load_settings())

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        directory: SlackDirectory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> KeyMedicSlackInput:
        """The channel `settings` describe: off without Slack settings, refused when half configured."""
        secret, token = settings.slack_signing_secret, settings.slack_bot_token
        if not secret and not token:
            logger.info("Slack channel off: KEYMEDIC_SLACK_SIGNING_SECRET and KEYMEDIC_SLACK_BOT_TOKEN unset")
        elif not secret:
            raise InvalidConfigException(
                "KEYMEDIC_SLACK_SIGNING_SECRET is required with KEYMEDIC_SLACK_BOT_TOKEN: without it anyone "
                "could post to the Slack webhook as any user (docs/slack.md)"
            )
        elif not token:
            raise InvalidConfigException(
                "KEYMEDIC_SLACK_BOT_TOKEN is required with KEYMEDIC_SLACK_SIGNING_SECRET: without it the bot "
                "cannot answer in Slack (docs/slack.md)"
            )
        return cls(settings, directory=directory, clock=clock)

    def __init__(
        self,
        settings: Settings,
        *,
        directory: SlackDirectory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = bool(settings.slack_signing_secret and settings.slack_bot_token)
        # Rasa's constructor stores these and refuses an empty signing secret (`_validate_credentials`,
        # skipped below only while the channel is off and its webhook answers 404 to everything).
        super().__init__(
            slack_token=settings.slack_bot_token,
            slack_signing_secret=settings.slack_signing_secret,
            use_threads=True,
            conversation_granularity="thread",
        )
        self.settings = settings
        self.verifier = (
            SlackSignatureVerifier(settings.slack_signing_secret, clock=clock) if self.enabled else None
        )
        self.directory = directory or SlackDirectory(settings)
        api_url = (
            settings.slack_api_url.rstrip("/") + "/" if settings.slack_api_url else AsyncWebClient.BASE_URL
        )
        self.client: AsyncWebClient | None = (
            AsyncWebClient(token=settings.slack_bot_token, base_url=api_url) if self.enabled else None
        )

    def _validate_credentials(self) -> None:
        if self.enabled:
            super()._validate_credentials()

    # -- output ------------------------------------------------------------------------------------------

    def get_output_channel(
        self, channel: str | None = None, thread_id: str | None = None
    ) -> OutputChannel | None:
        """Where Rasa sends what it says on its own (the agent API's relayed replies, reminders): the thread
        the conversation id names. None while the channel is off."""
        return SlackThreadOutput(self.client) if self.client is not None else None

    async def _ephemeral(
        self, channel: str, user: str, thread_ts: str, text: str, url: str | None = None
    ) -> None:
        """A message only this user sees (a link meant for them must not be clickable by the channel)."""
        assert self.client is not None
        arguments: dict[str, Any] = {
            "channel": channel,
            "user": user,
            "thread_ts": thread_ts,
            "text": escape(text),
        }
        if url:
            arguments["blocks"] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}},
                {
                    "type": "actions",
                    "block_id": "keymedic_link",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "keymedic_link_account",
                            "text": {"type": "plain_text", "text": "Link my Slack account"},
                            "url": url,
                            "style": "primary",
                        }
                    ],
                },
            ]
        try:
            await self.client.chat_postEphemeral(**arguments)
        except SlackApiError as error:
            logger.error("Slack refused an ephemeral message: %s", error.response.get("error", "unknown"))

    # -- input -------------------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Slack wants its 200 within 3 seconds and retries otherwise; the bot's turn takes longer.
        async def guarded() -> None:
            try:
                await work
            except Exception as error:
                # The type only: an exception's message may quote the user's text.
                logger.error("handling a Slack message failed: %s", type(error).__name__)

        task = asyncio.create_task(guarded())
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _deliver(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        *,
        team: str,
        user: str,
        channel: str,
        thread_ts: str,
        text: str,
        existing_thread_only: bool,
        direct: bool = False,
    ) -> None:
        """Screen the text, resolve the user, then hand the message to Rasa in the thread's conversation."""
        assert self.client is not None
        conversation = conversation_id(team, channel, thread_ts)
        refused = refusal(text, None)
        if refused is not None:
            # Answered before redaction and NLU read it (issue 19), to the sender alone.
            await self._ephemeral(channel, user, thread_ts, refused)
            return
        screened = screen(text, None)
        # The Slack user goes with the answer: a credential-form link for them is shown to them alone.
        output = SlackThreadOutput(self.client, user=user)
        # A link code counts only in the user's DM with the bot: there it can only come from that user.
        code = code_candidate(text) if direct else None
        resolution: Resolution = await self.directory.resolve(
            team, user, conversation, existing_thread_only=existing_thread_only, code=code
        )
        if resolution.kind == "ignore":
            return
        if screened.kinds:
            # Told even when the user is unlinked: the key is in Slack's history now and must be revoked.
            await self._ephemeral(channel, user, thread_ts, NOTICE)
        if resolution.kind == "unlinked":
            prompt = NO_CODE_WAITING if resolution.detail == "no_code" else LINK_PROMPT
            await self._ephemeral(channel, user, thread_ts, prompt, resolution.link_url)
            return
        if resolution.kind == "code_accepted":
            handle = resolution.detail or ""
            await self._ephemeral(channel, user, thread_ts, CODE_ACCEPTED.format(handle=handle))
            return
        if resolution.kind == "code_refused":
            await self._ephemeral(channel, user, thread_ts, CODE_REFUSED[resolution.detail or "wrong_code"])
            return
        if resolution.kind == "not_owner":
            await self._ephemeral(channel, user, thread_ts, NOT_YOUR_THREAD)
            return
        metadata: dict[str, Any] = {"slack": {"team": team, "channel": channel, "thread_ts": thread_ts}}
        metadata.update(screened.metadata or {})
        message_text = screened.text if isinstance(screened.text, str) else ""
        try:
            await on_new_message(
                UserMessage(message_text, output, conversation, input_channel=CHANNEL, metadata=metadata)
            )
        except Exception as error:
            # The turn was not stored: the user must not believe it went through (issue 19).
            log_failed_turn(CHANNEL, error)
            await self._ephemeral(channel, user, thread_ts, NOT_SAVED)

    async def _on_event(
        self, body: dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]], retry: str | None
    ) -> None:
        event = body.get("event")
        if not isinstance(event, dict) or event.get("type") not in ("message", "app_mention"):
            return
        # Edits, joins, bot posts (ours included) and deletions are not the user talking.
        if event.get("subtype") or event.get("bot_id"):
            return
        team = str(body.get("team_id") or event.get("team") or "")
        user, channel, ts = (str(event.get(k) or "") for k in ("user", "channel", "ts"))
        bot_users = [str(a.get("user_id")) for a in body.get("authorizations") or [] if isinstance(a, dict)]
        if not (team and user and channel and ts) or user in bot_users:
            return
        text = str(event.get("text") or "")
        existing_thread_only = False
        if event.get("type") == "message" and event.get("channel_type") != "im":
            # In a channel KeyMedic answers a mention (its `app_mention` event, handled there), and then
            # everything said in that thread; other threads and top-level chatter are not for it.
            if not event.get("thread_ts") or any(f"<@{bot}>" in text for bot in bot_users):
                return
            existing_thread_only = True
        thread_ts = str(event.get("thread_ts") or ts)
        try:
            conversation_id(team, channel, thread_ts)
        except ValueError:
            logger.info("Slack event with malformed ids ignored")
            return
        keys = [f"message:{team}:{channel}:{ts}"]
        if body.get("event_id"):
            keys.append(f"event:{body['event_id']}")
        if not await self.directory.first(keys):
            logger.info("Slack delivery seen before, not acted on again (retry %s)", retry or "-")
            return
        clean = _unescape(self._sanitize_user_message(text, bot_users))
        self._spawn(
            self._deliver(
                on_new_message,
                team=team,
                user=user,
                channel=channel,
                thread_ts=thread_ts,
                text=clean,
                existing_thread_only=existing_thread_only,
                direct=event.get("channel_type") == "im",
            )
        )

    async def _on_click(
        self, payload: dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        if payload.get("type") != "block_actions":
            return
        actions = payload.get("actions") or []
        action = actions[0] if actions and isinstance(actions[0], dict) else {}
        value = self._get_interactive_response(action) if action.get("type") else None
        if value is None:
            return  # a link button: Slack opened the URL; there is nothing for the bot
        user_info = payload.get("user") or {}
        team = str((payload.get("team") or {}).get("id") or user_info.get("team_id") or "")
        user = str(user_info.get("id") or "")
        container = payload.get("container") or {}
        message = payload.get("message") or {}
        channel = str((payload.get("channel") or {}).get("id") or container.get("channel_id") or "")
        message_ts = str(container.get("message_ts") or message.get("ts") or "")
        thread_ts = str(message.get("thread_ts") or container.get("thread_ts") or message_ts)
        if not (team and user and channel and message_ts):
            return
        try:
            conversation_id(team, channel, thread_ts)
        except ValueError:
            return
        # One answer per message of buttons: the buttons of one message are alternatives, so a double
        # click, or a second button after the first, is acknowledged and dropped.
        if not await self.directory.first([f"click:{team}:{channel}:{message_ts}"]):
            logger.info("Slack button click seen before, not acted on again")
            return
        self._spawn(self._retire_buttons(channel, message_ts, message, action))
        self._spawn(
            self._deliver(
                on_new_message,
                team=team,
                user=user,
                channel=channel,
                thread_ts=thread_ts,
                text=str(value),
                existing_thread_only=True,
            )
        )

    async def _retire_buttons(
        self, channel: str, ts: str, message: dict[str, Any], action: dict[str, Any]
    ) -> None:
        """Replace the clicked message's buttons with what was chosen, so it reads as answered."""
        assert self.client is not None
        blocks = [
            b for b in message.get("blocks") or [] if isinstance(b, dict) and b.get("type") != "actions"
        ]
        chosen = str((action.get("text") or {}).get("text") or "")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"✓ {escape(chosen)}"}]})
        try:
            await self.client.chat_update(
                channel=channel, ts=ts, text=str(message.get("text") or chosen), blocks=blocks
            )
        except SlackApiError as error:
            logger.info("could not mark the buttons answered: %s", error.response.get("error", "unknown"))

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """`/webhooks/slack/webhook` takes both the Events API and interactivity (Slack posts JSON to the
        first and a form with a `payload` to the second); the manifest points both here."""
        webhook = Blueprint("keymedic_slack_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.enabled else "off"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.enabled or self.verifier is None:
                return response.json({"error": "slack_not_configured"}, status=HTTPStatus.NOT_FOUND)
            try:
                self.verifier.verify(
                    request.headers.get("x-slack-request-timestamp"),
                    request.headers.get("x-slack-signature"),
                    request.body or b"",
                )
            except SignatureRefused as refused:
                logger.info("Slack request refused: %s", refused.code)
                return response.json({"error": refused.code}, status=HTTPStatus.UNAUTHORIZED)
            media_type = _media_type(request)
            try:
                if media_type == _JSON:
                    body = json.loads(request.body)
                    if not isinstance(body, dict):
                        raise ValueError("not an object")
                    if body.get("type") == "url_verification":
                        return response.json({"challenge": str(body.get("challenge", ""))})
                    if body.get("type") == "event_callback":
                        retry = request.headers.get("x-slack-retry-num")
                        await self._on_event(body, on_new_message, retry)
                    return response.text("")
                if media_type == _FORM:
                    raw = request.form.get("payload")
                    payload = json.loads(raw) if isinstance(raw, str) else None
                    if not isinstance(payload, dict):
                        raise ValueError("no payload")
                    await self._on_click(payload, on_new_message)
                    return response.text("")
            except (ValueError, TypeError, AttributeError):
                return response.json({"error": "malformed_body"}, status=HTTPStatus.BAD_REQUEST)
            return response.json(
                {"error": "unsupported_media_type"}, status=HTTPStatus.UNSUPPORTED_MEDIA_TYPE
            )

        return webhook
