"""The support channel's notification and its app manifest (docs/slack.md "The support channel")."""

from __future__ import annotations

import yaml

from bot.config import PROJECT_ROOT
from bot.handoff.slack_support import APPROVE, CLOSE, RESUME, support_message
from bot.handoff.webhook import slack_message
from bot.web.slack_support import ACTIONS_PATH, EVENTS_PATH

SUMMARY = {
    "ticket_id": 42,
    "reason": "key still failing",
    "reasons": ["key still failing"],
    "channel": "socketio",
    "user": {"id": 1, "handle": "alice", "display_name": "Alice"},
    "wallet": {"id": 3, "exchange": "kraken", "account_label": "default", "display_name": None},
    "diagnosis": {"tested": True, "failing_items": [], "exchange_unavailable": None},
    "edits_at_stake": {"total": 2},
}


def test_the_notification_is_the_webhooks_message_with_the_tickets_buttons() -> None:
    link = "https://keymedic.example/agent/tickets/42"
    message = support_message(SUMMARY, delivery_id="kmt_1", link=link)
    webhook = slack_message(SUMMARY, delivery_id="kmt_1", link=link)
    assert message["text"] == webhook["text"]
    assert [b["type"] for b in message["blocks"]] == [b["type"] for b in webhook["blocks"]]
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    by_id = {e["action_id"]: e for e in actions["elements"]}
    assert {by_id[a]["value"] for a in (RESUME, APPROVE, CLOSE)} == {"42"}
    assert by_id["keymedic_open_ticket"]["url"] == link
    # The first click on Approve only asks: its label says so.
    assert by_id[APPROVE]["text"]["text"].endswith("…")


def test_the_support_apps_manifest_points_at_the_web_apps_routes() -> None:
    manifest = yaml.safe_load((PROJECT_ROOT / "deploy" / "slack" / "support-manifest.yml").read_text())
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    assert settings["interactivity"]["request_url"].endswith(ACTIONS_PATH)
    assert set(settings["event_subscriptions"]["bot_events"]) == {"message.channels", "message.groups"}
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write",
        "channels:history",
        "groups:history",
    }
    # Both under the Ingress's /slack prefix, which goes to the web app (tests/unit/test_deploy_files.py).
    assert EVENTS_PATH.startswith("/slack/") and ACTIONS_PATH.startswith("/slack/")
