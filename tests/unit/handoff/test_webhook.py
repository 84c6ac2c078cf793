"""The support webhook's messages (Slack Block Kit, generic JSON) and its sender, on `httpx.MockTransport`."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from bot.handoff.outbox import DeliveryFailed
from bot.handoff.webhook import WebhookSender, json_message, slack_message, ticket_url
from bot.store.model import OutboxMessage

SUMMARY: dict[str, Any] = {
    "ticket_id": 42,
    "conversation_id": "conv-1",
    "channel": "socketio",
    "reason": "key still failing after checks",
    "reasons": ["key still failing after checks", "user asked for a person"],
    "opening": 1,
    "user": {"id": 7, "handle": "alice", "display_name": "Alice <admin>"},
    "wallet": {"id": 3, "exchange": "kraken", "account_label": "default", "display_name": ""},
    "diagnosis": {
        "tested": True,
        "all_passed": False,
        "failing_items": [
            {"item": "no_ip_restriction", "status": "fail", "raw_code": "EGeneral:Permission denied"},
            {"item": "has_activity", "status": "unknown", "raw_code": None},
        ],
        "exchange_unavailable": None,
    },
    "checklist": {"checklist_activated": True},
    "edits_at_stake": {
        "category_changes": 2,
        "notes": 1,
        "cost_basis_changes": 0,
        "manual_transactions": 1,
        "total": 4,
    },
    "created_at": "2026-01-05T09:00:00+00:00",
}
LINK = "https://km.example/agent/tickets/42"


def test_the_slack_message_is_block_kit_with_summary_link_and_delivery_id() -> None:
    message = slack_message(SUMMARY, delivery_id="kmt_abc", link=LINK)

    assert set(message) == {"text", "blocks"}
    assert "#42" in message["text"] and "kraken" in message["text"]
    types = [block["type"] for block in message["blocks"]]
    assert types == ["header", "section", "section", "section", "actions", "context"]
    header, facts, check, edits, actions, context = message["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "KeyMedic hand-off #42"}
    assert all(field["type"] == "mrkdwn" for field in facts["fields"]) and len(facts["fields"]) <= 10
    assert "Alice &lt;admin&gt;" in facts["fields"][0]["text"]  # Slack's control characters escaped
    assert "no IP restriction: fail (`EGeneral:Permission denied`)" in check["text"]["text"]
    assert "account has activity: unknown" in check["text"]["text"]
    assert "4" in edits["text"]["text"]
    [button] = actions["elements"]
    assert button["type"] == "button" and button["url"] == LINK
    assert "kmt_abc" in context["elements"][0]["text"]
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000  # Block Kit's limit for a section's text


def test_the_json_message_carries_the_summary_the_link_and_the_delivery_id() -> None:
    message = json_message(SUMMARY, delivery_id="kmt_abc", link=LINK)
    assert message["type"] == "keymedic.ticket.opened" and message["delivery_id"] == "kmt_abc"
    assert message["ticket"]["url"] == LINK
    assert message["ticket"]["diagnosis"]["failing_items"][0]["raw_code"] == "EGeneral:Permission denied"


def test_the_ticket_link_points_into_the_agent_api() -> None:
    assert ticket_url("https://km.example/", 42) == LINK


def outbox_message() -> OutboxMessage:
    return OutboxMessage(delivery_id="kmt_abc", reason="ticket_opened", payload=SUMMARY, ticket_id=42, id=1)


def test_a_json_delivery_has_the_delivery_id_header_and_an_hmac_signature() -> None:
    requests: list[httpx.Request] = []

    def helpdesk_accepts(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(202)

    sender = WebhookSender(
        "https://helpdesk.example/hook",
        "json",
        web_base_url="https://km.example",
        secret="s3cret",
        transport=httpx.MockTransport(helpdesk_accepts),
    )
    sender(outbox_message())

    [request] = requests
    assert request.headers["X-KeyMedic-Delivery-Id"] == "kmt_abc"
    assert request.headers["Idempotency-Key"] == "kmt_abc"
    expected = hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-KeyMedic-Signature"] == f"sha256={expected}"
    assert json.loads(request.content)["ticket"]["url"] == LINK


def test_a_slack_delivery_posts_block_kit() -> None:
    bodies: list[dict[str, Any]] = []

    def slack_ok(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    sender = WebhookSender(
        "https://hooks.slack.com/services/T0/B0/X",
        "slack",
        web_base_url="https://km.example",
        transport=httpx.MockTransport(slack_ok),
    )
    sender(outbox_message())
    assert set(bodies[0]) == {"text", "blocks"}


@pytest.mark.parametrize("status", [301, 400, 404, 410, 500, 503])
def test_anything_but_2xx_is_a_failed_attempt(status: int) -> None:
    sender = WebhookSender(
        "https://hooks.slack.com/services/T0/B0/SECRETPATH",
        "slack",
        web_base_url="https://km.example",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, text="no_service")),
    )
    with pytest.raises(DeliveryFailed) as failure:
        sender(outbox_message())
    assert str(failure.value) == f"HTTP {status}"


def test_a_network_error_never_names_the_webhook_url() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    sender = WebhookSender(
        "https://hooks.slack.com/services/T0/B0/SECRETPATH",
        "slack",
        web_base_url="https://km.example",
        transport=httpx.MockTransport(unreachable),
    )
    with pytest.raises(DeliveryFailed) as failure:
        sender(outbox_message())
    assert "SECRETPATH" not in str(failure.value) and "SECRETPATH" not in repr(sender)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
