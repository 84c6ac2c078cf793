"""`SlackThreadOutput`: the bot's messages into the Slack thread a conversation lives in (docs/slack.md).

A KeyMedic Slack conversation id names its thread: `slack-<team>-<channel>-<thread ts>`
(`conversation_id` / `thread_of`). Only URL-safe characters: the agent API puts it in a Rasa URL path
percent-encoded, and Rasa's router (Sanic 21.12) does not decode path parameters, so a `:` would name
another conversation. The output channel reads the thread from the recipient id Rasa hands it,
so it needs no per-conversation state: a reply the agent API relays with `output_channel=latest` (Rasa
calls `get_output_channel()` with no arguments, then `send_*(sender_id, …)`) reaches the same thread as the
bot's own answers, from any Rasa replica.

Buttons are Block Kit: a section with the text and an actions block; a button with a `url` is a link
button, one with a `payload` sends it back through Slack's interactivity URL. The credential form is never
rendered in Slack (secrets do not belong in a chat): its payload becomes a link button to the web app's
one-time form. Link previews are off, so Slack's unfurler never fetches a one-time link.

The form's link is a one-time credential for one user (issue 15), so it goes only where that user alone sees
it: into a DM's thread, or — in a channel thread — as an ephemeral message to the Slack user whose message
the bot is answering. Without such a user (a message Rasa sends on its own into a channel thread) it is not
sent; the user is asked to continue in a DM. The link is also taken out of the bot's text everywhere.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Final

from rasa.core.channels.channel import OutputChannel
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

__all__ = [
    "CHANNEL",
    "SlackThread",
    "SlackThreadOutput",
    "conversation_id",
    "thread_of",
    "escape",
    "button_blocks",
]

logger = logging.getLogger(__name__)

CHANNEL: Final = "slack"
_PREFIX: Final = "slack-"
# Slack ids are upper-case letters and digits; a message ts is seconds.microseconds.
_ID: Final = r"[A-Z0-9]{1,32}"
_TS: Final = r"[0-9]{1,12}\.[0-9]{1,9}"
_CONVERSATION: Final = re.compile(rf"slack-(?P<team>{_ID})-(?P<channel>{_ID})-(?P<ts>{_TS})")
# Block Kit limits: 3,000 characters of section text, 75 of button text, 2,000 of a button value, 25
# elements in an actions block; chat.postMessage's `text` holds up to 40,000.
_SECTION_MAX: Final = 3000
_BUTTON_TEXT_MAX: Final = 75
_VALUE_MAX: Final = 2000
_BUTTONS_MAX: Final = 25
_FORM_TYPE: Final = "keymedic_credential_form"
# The web app's one-time form link (bot/web/intake.py `intake_form_url`), in whatever text carries it.
_FORM_LINK: Final = re.compile(r"https?://[^\s<>]*/intake/form[#?]token=it_[A-Za-z0-9_-]{43}")
_FORM_TEXT: Final = "Enter the new key in the secure form (it works once, for a few minutes):"
_FORM_ONLY_IN_PRIVATE: Final = (
    "I send the secure form for a new key only privately. Send me a direct message and ask again there."
)


@dataclass(frozen=True)
class SlackThread:
    """Where a conversation lives in Slack."""

    team: str
    channel: str
    thread_ts: str


def conversation_id(team: str, channel: str, thread_ts: str) -> str:
    """The Rasa conversation (sender id) of a Slack thread: one conversation per thread."""
    candidate = f"{_PREFIX}{team}-{channel}-{thread_ts}"
    if not _CONVERSATION.fullmatch(candidate):
        raise ValueError("not a Slack team, channel and message ts")
    return candidate


def thread_of(conversation: str) -> SlackThread | None:
    """The thread a Slack conversation id names; None for any other conversation."""
    match = _CONVERSATION.fullmatch(conversation)
    if match is None:
        return None
    return SlackThread(match["team"], match["channel"], match["ts"])


def escape(text: str) -> str:
    """Slack's three control characters, escaped as its "Formatting text" guide asks: a `<` in a bot or agent
    message is shown, never read as a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def button_blocks(text: str, buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Block Kit for a message with buttons: the text, then the buttons (links open, payloads come back)."""
    elements: list[dict[str, Any]] = []
    for index, button in enumerate(buttons[:_BUTTONS_MAX]):
        title = _clip(str(button.get("title") or "Open"), _BUTTON_TEXT_MAX)
        element: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": title, "emoji": True},
            # Unique within the message, as Slack requires.
            "action_id": f"keymedic_{index}",
        }
        if button.get("url") and not button.get("payload"):
            element["url"] = str(button["url"])
        else:
            payload = str(button.get("payload") or title)
            if len(payload) > _VALUE_MAX:
                logger.warning("a button payload is longer than Slack allows; the button is left out")
                continue
            element["value"] = payload
        elements.append(element)
    blocks: list[dict[str, Any]] = []
    if text.strip():
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(escape(text), _SECTION_MAX)}}
        )
    if elements:
        blocks.append({"type": "actions", "block_id": "keymedic_buttons", "elements": elements})
    return blocks


class SlackThreadOutput(OutputChannel):
    """Posts into the thread the recipient (a Slack conversation id) names."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, client: AsyncWebClient, *, user: str | None = None) -> None:
        """`user`: the Slack user whose message is being answered (None for what Rasa sends on its own)."""
        super().__init__()
        self.client = client
        self.user = user

    async def _post(self, recipient_id: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        thread = thread_of(recipient_id)
        if thread is None:
            # Rasa only hands this channel its own conversations; anything else is a bug, not a user.
            logger.error("not a Slack conversation id; message dropped")
            return
        arguments: dict[str, Any] = {
            "channel": thread.channel,
            "thread_ts": thread.thread_ts,
            # With blocks, `text` is the notification's fallback; Slack reads it as mark-up too.
            "text": _clip(escape(text), _SECTION_MAX),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if blocks:
            arguments["blocks"] = blocks
        try:
            await self.client.chat_postMessage(**arguments)
        except SlackApiError as error:
            # Slack's error code only ("channel_not_found", "ratelimited"): never the token or the text.
            logger.error("Slack refused a message: %s", error.response.get("error", "unknown"))

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        # The form's link travels only as its private button (`send_custom_json`), never in the text.
        await self._post(recipient_id, _FORM_LINK.sub("the secure form", text))

    async def _send_form(self, recipient_id: str, form_url: str) -> None:
        thread = thread_of(recipient_id)
        if thread is None:
            logger.error("not a Slack conversation id; message dropped")
            return
        blocks = button_blocks(_FORM_TEXT, [{"title": "Open the secure form", "url": form_url}])
        # Slack's direct-message channel ids start with "D": only the user and the bot are in them.
        if thread.channel.startswith("D"):
            await self._post(recipient_id, _FORM_TEXT, blocks)
            return
        if self.user is None:
            await self._post(recipient_id, _FORM_ONLY_IN_PRIVATE)
            return
        try:
            await self.client.chat_postEphemeral(
                channel=thread.channel,
                user=self.user,
                thread_ts=thread.thread_ts,
                text=escape(_FORM_TEXT),
                blocks=blocks,
            )
        except SlackApiError as error:
            logger.error("Slack refused an ephemeral message: %s", error.response.get("error", "unknown"))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        blocks = button_blocks(text, buttons)
        await self._post(recipient_id, text, blocks or None)

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._post(recipient_id, image, [{"type": "image", "image_url": image, "alt_text": "image"}])

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        if json_message.get("type") == _FORM_TYPE and json_message.get("form_url"):
            # Secrets are never asked for in Slack: the form is the web app's one-time page.
            await self._send_form(recipient_id, str(json_message["form_url"]))
            return
        if isinstance(json_message.get("blocks"), list):
            await self._post(recipient_id, str(json_message.get("text") or ""), json_message["blocks"])
            return
        # Rasa's own Slack output passes any custom payload to chat.postMessage as arguments; a payload
        # meant for the widget could then set the channel or impersonate. Drop what Slack can't show.
        logger.debug("custom payload without Slack blocks not sent to Slack")
