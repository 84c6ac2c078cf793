"""The Slack channel's configuration: off without Slack settings, refused half-configured, and the app
manifest pointing Slack at the channel's one webhook."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from rasa.shared.exceptions import InvalidConfigException

from bot.config import PROJECT_ROOT, Settings, load_settings
from channels.slack import KeyMedicSlackInput

MANIFEST = PROJECT_ROOT / "deploy" / "slack" / "manifest.yml"


def settings(**slack: str) -> Settings:
    return replace(load_settings(), **{"slack_signing_secret": "", "slack_bot_token": "", **slack})


def test_without_slack_settings_the_channel_is_off_and_rasa_still_starts() -> None:
    channel = KeyMedicSlackInput.from_settings(settings())
    assert channel.enabled is False and channel.get_output_channel() is None


@pytest.mark.parametrize(
    "slack",
    [{"slack_bot_token": "xoxb-1"}, {"slack_signing_secret": "0123456789abcdef"}],
)
def test_half_configured_slack_refuses_to_start(slack: dict[str, str]) -> None:
    with pytest.raises(InvalidConfigException):
        KeyMedicSlackInput.from_settings(settings(**slack))


@pytest.mark.parametrize("key", ["slack_token", "slack_signing_secret"])
def test_secrets_in_the_credentials_file_are_refused(key: str) -> None:
    with pytest.raises(InvalidConfigException, match="KEYMEDIC_SLACK"):
        KeyMedicSlackInput.from_credentials({key: "xoxb-in-a-yaml-file"})


def test_configured_slack_is_on_and_answers_through_its_threads() -> None:
    channel = KeyMedicSlackInput.from_settings(
        settings(slack_signing_secret="0123456789abcdef", slack_bot_token="xoxb-1")
    )
    assert channel.enabled is True and channel.name() == "slack"
    assert channel.get_output_channel() is not None


def test_both_credentials_files_load_the_slack_channel() -> None:
    for name in ("credentials.yml", "credentials.production.yml"):
        channels = yaml.safe_load((PROJECT_ROOT / name).read_text())
        assert "channels.slack.KeyMedicSlackInput" in channels, name
        assert channels["channels.slack.KeyMedicSlackInput"] is None  # nothing secret in the file


def test_the_manifest_sends_events_and_clicks_to_the_channels_webhook() -> None:
    manifest = yaml.safe_load(Path(MANIFEST).read_text())
    settings_ = manifest["settings"]
    events_url = settings_["event_subscriptions"]["request_url"]
    assert events_url.endswith("/webhooks/slack/webhook")  # Rasa mounts a channel at /webhooks/<name>/
    assert settings_["interactivity"] == {"is_enabled": True, "request_url": events_url}
    assert set(settings_["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
        "message.channels",
        "message.groups",
    }
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "app_mentions:read", "im:history"} <= scopes
    assert manifest["settings"]["socket_mode_enabled"] is False  # Slack posts to the webhook
