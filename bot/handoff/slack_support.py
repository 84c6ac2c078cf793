"""Ticket notifications posted to the Slack support channel with the bot token (docs/slack.md "The support
channel"), so each one is a message with a `ts`: the root of the thread in which agents reply to the user.

The message is the support webhook's Block Kit (`bot.handoff.webhook.slack_message`) with the ticket's
buttons: Resume, Approve removal (which first asks to confirm, restating the edits at stake) and Close; the
web app's `bot.web.slack_support` answers them. Each posted message is recorded as the ticket's thread
(`bot.store.agent_slack.record_thread`) before the outbox row is settled.

A retried delivery posts again (Slack's Web API has no idempotency key); the delivery id stays on the
message's last line, so people see the duplicate for what it is, and both threads reach the same ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from bot.handoff.outbox import DeliveryFailed
from bot.handoff.webhook import slack_message, ticket_url
from bot.store import agent_slack
from bot.store.model import OutboxMessage
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "SLACK_API_URL",
    "RESUME",
    "APPROVE",
    "CONFIRM_APPROVE",
    "CLOSE",
    "ticket_buttons",
    "support_message",
    "SlackSupportPoster",
]

SLACK_API_URL: Final = "https://slack.com/api/"
# The buttons' action ids; each button's value is the ticket id.
RESUME: Final = "keymedic_support_resume"
APPROVE: Final = "keymedic_support_approve"
CONFIRM_APPROVE: Final = "keymedic_support_approve_confirm"
CLOSE: Final = "keymedic_support_close"


def _button(text: str, action_id: str, ticket_id: object, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": str(ticket_id),
    }
    if style:
        button["style"] = style
    return button


def ticket_buttons(ticket_id: object, link: str) -> dict[str, Any]:
    """The actions block of a notification in the support channel."""
    return {
        "type": "actions",
        "block_id": f"keymedic_ticket_{ticket_id}",
        "elements": [
            _button("Resume the bot", RESUME, ticket_id, "primary"),
            _button("Approve removal…", APPROVE, ticket_id),
            _button("Close", CLOSE, ticket_id),
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open ticket"},
                "url": link,
                "action_id": "keymedic_open_ticket",
            },
        ],
    }


def support_message(summary: Mapping[str, Any], *, delivery_id: str, link: str) -> dict[str, Any]:
    """The webhook's Block Kit message with the ticket's buttons in place of its lone link button."""
    message = slack_message(summary, delivery_id=delivery_id, link=link)
    blocks = [
        ticket_buttons(summary.get("ticket_id"), link) if block.get("type") == "actions" else block
        for block in message["blocks"]
    ]
    return {**message, "blocks": blocks}


def api_url(configured: str) -> str:
    """Slack's Web API base URL, ending in a slash (`KEYMEDIC_SLACK_API_URL`, else Slack's own)."""
    return (configured or SLACK_API_URL).rstrip("/") + "/"


class SlackSupportPoster:
    """Posts outbox notifications to the support channel (a `bot.handoff.outbox.Send`) and records each one as
    its ticket's thread. The transport is injected in tests and defaults to the network."""

    def __init__(
        self,
        *,
        token: str,
        channel: str,
        uow_factory: Callable[[], SqlAlchemyUnitOfWork],
        web_base_url: str,
        slack_api_url: str = "",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token or not channel:
            raise ValueError("the support channel needs the Slack bot token and a channel id")
        self._token = token
        self._channel = channel
        self._uow_factory = uow_factory
        self._web_base_url = web_base_url
        self._url = api_url(slack_api_url) + "chat.postMessage"
        self._client = httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"SlackSupportPoster(channel={self._channel!r})"  # the token stays out

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SlackSupportPoster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __call__(self, message: OutboxMessage) -> None:
        ticket_id = message.payload.get("ticket_id", message.ticket_id)
        link = ticket_url(self._web_base_url, ticket_id)
        document = support_message(message.payload, delivery_id=message.delivery_id, link=link)
        try:
            response = self._client.post(
                self._url,
                json={"channel": self._channel, "unfurl_links": False, **document},
                headers={"Authorization": f"Bearer {self._token}", "User-Agent": "KeyMedic-Outbox/1"},
            )
        except httpx.TimeoutException:
            raise DeliveryFailed("timed out") from None
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"network error: {type(error).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed("Slack answered with something other than JSON") from None
        if not isinstance(answer, dict) or not answer.get("ok") or not answer.get("ts"):
            code = answer.get("error") if isinstance(answer, dict) else None
            # Slack's error codes (`channel_not_found`, `not_in_channel`, …) hold no secret.
            raise DeliveryFailed(f"Slack refused: {str(code or 'no ts')[:80]}")
        if isinstance(ticket_id, int):
            agent_slack.record_thread(
                self._uow_factory(), ticket_id, str(answer.get("channel") or self._channel), str(answer["ts"])
            )
