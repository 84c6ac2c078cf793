"""The support webhook: a ticket notification as a Slack Block Kit message or as KeyMedic's JSON document.

Both carry the delivery id so the receiver can be idempotent: in the `X-KeyMedic-Delivery-Id` header (and
`Idempotency-Key`), in the JSON document's `delivery_id`, and in the Slack message's last context line (Slack
incoming webhooks ignore headers and reject unknown fields, so a person sees it there). With
`KEYMEDIC_SUPPORT_WEBHOOK_SECRET` set, a JSON delivery is signed: `X-KeyMedic-Signature: sha256=<hex>`, the
HMAC-SHA256 of the exact body bytes.

A delivery succeeds on any 2xx answer; anything else (a redirect included) is a failed attempt, retried by
the outbox. Errors name the status code or the error type, never the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import httpx

from bot.handoff.outbox import DeliveryFailed
from bot.store.model import OutboxMessage

__all__ = [
    "WebhookKind",
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "ticket_url",
    "slack_message",
    "json_message",
    "WebhookSender",
]

WebhookKind = Literal["slack", "json"]
DELIVERY_HEADER: Final = "X-KeyMedic-Delivery-Id"
SIGNATURE_HEADER: Final = "X-KeyMedic-Signature"
JSON_EVENT_TYPE: Final = "keymedic.ticket.opened"

_ITEM_TITLES: Final = {
    "format": "key format",
    "key_known": "key known to the exchange",
    "secret_ok": "secret",
    "passphrase_ok": "passphrase",
    "activated": "key activated",
    "read_permission": "read permission",
    "no_trade_or_withdraw": "no trade/withdraw permission",
    "no_ip_restriction": "no IP restriction",
    "has_activity": "account has activity",
}


def ticket_url(web_base_url: str, ticket_id: object) -> str:
    """The ticket in the agent API (needs the agent bearer token)."""
    return f"{web_base_url.rstrip('/')}/agent/tickets/{ticket_id}"


def _slack_escape(text: object) -> str:
    # Slack mrkdwn treats &, < and > as control characters (its "Formatting text" docs).
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _failing_lines(summary: Mapping[str, Any]) -> list[str]:
    diagnosis = summary.get("diagnosis") or {}
    lines = []
    for item in diagnosis.get("failing_items") or []:
        title = _ITEM_TITLES.get(str(item.get("item")), str(item.get("item")))
        code = f" (`{_slack_escape(item['raw_code'])}`)" if item.get("raw_code") else ""
        lines.append(f"• {_slack_escape(title)}: {_slack_escape(item.get('status'))}{code}")
    unavailable = diagnosis.get("exchange_unavailable")
    if unavailable:
        code = f" (`{_slack_escape(unavailable['raw_code'])}`)" if unavailable.get("raw_code") else ""
        lines.append(f"• exchange could not answer: {_slack_escape(unavailable.get('kind'))}{code}")
    if not lines:
        lines.append("• no live test failed" if diagnosis.get("tested") else "• no live test yet")
    return lines


def _who(summary: Mapping[str, Any]) -> tuple[str, str]:
    user = summary.get("user") or {}
    wallet = summary.get("wallet") or {}
    who = user.get("display_name") or user.get("handle") or "unknown user"
    if wallet:
        label = wallet.get("account_label")
        where = str(wallet.get("exchange")) + (f" ({label})" if label and label != "default" else "")
    else:
        where = "no wallet chosen"
    return str(who), where


def slack_message(summary: Mapping[str, Any], *, delivery_id: str, link: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback `text` plus Block Kit blocks (header, facts, what failed,
    edits at stake, a button to the ticket, the delivery id)."""
    who, where = _who(summary)
    ticket_id = summary.get("ticket_id")
    edits = summary.get("edits_at_stake") or {}
    reasons = ", ".join(str(r) for r in summary.get("reasons") or [summary.get("reason")])
    fallback = f"KeyMedic hand-off #{ticket_id}: {who}, {where} — {reasons}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"KeyMedic hand-off #{ticket_id}"[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*User*\n{_slack_escape(who)}"},
                {"type": "mrkdwn", "text": f"*Wallet*\n{_slack_escape(where)}"},
                {"type": "mrkdwn", "text": f"*Why*\n{_slack_escape(reasons)}"},
                {"type": "mrkdwn", "text": f"*Channel*\n{_slack_escape(summary.get('channel') or '?')}"},
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Key check*\n" + "\n".join(_failing_lines(summary))[:2900]},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"*Manual edits at stake if the wallet were removed:* {edits.get('total', 0)}"
                    if edits
                    else "*Manual edits at stake:* not counted (no wallet chosen)"
                ),
            },
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open ticket"},
                    "url": link,
                    "action_id": "keymedic_open_ticket",
                }
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"delivery `{_slack_escape(delivery_id)}`"}],
        },
    ]
    return {"text": fallback, "blocks": blocks}


def json_message(summary: Mapping[str, Any], *, delivery_id: str, link: str) -> dict[str, Any]:
    """The generic webhook's document: `{"type", "delivery_id", "ticket": {…summary, "url"}}`."""
    return {"type": JSON_EVENT_TYPE, "delivery_id": delivery_id, "ticket": {**summary, "url": link}}


class WebhookSender:
    """Sends outbox messages to the support webhook (a `bot.handoff.outbox.Send`). The transport is injected
    in tests (`httpx.MockTransport`) and defaults to the network."""

    def __init__(
        self,
        url: str,
        kind: WebhookKind,
        *,
        web_base_url: str,
        secret: str = "",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url:
            raise ValueError("no support webhook URL configured")
        self._url = url
        self._kind: WebhookKind = kind
        self._web_base_url = web_base_url
        self._secret = secret.encode()
        self._client = httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"WebhookSender(kind={self._kind!r})"  # the URL is a credential

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def render(self, message: OutboxMessage) -> bytes:
        """The body of a delivery of `message`."""
        link = ticket_url(self._web_base_url, message.payload.get("ticket_id", message.ticket_id))
        build = slack_message if self._kind == "slack" else json_message
        document = build(message.payload, delivery_id=message.delivery_id, link=link)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    def __call__(self, message: OutboxMessage) -> None:
        body = self.render(message)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            DELIVERY_HEADER: message.delivery_id,
            "Idempotency-Key": message.delivery_id,
            "User-Agent": "KeyMedic-Outbox/1",
        }
        if self._secret and self._kind == "json":
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryFailed("timed out") from None
        except httpx.HTTPError as error:
            # httpx's messages can name the URL; the type is enough to act on.
            raise DeliveryFailed(f"network error: {type(error).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
