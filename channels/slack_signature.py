"""Slack's v0 request signature, as the Slack channel imports it: the code is `bot.slack_signature`, below
the layers, since the web app's support channel (`bot.web.slack_support`) checks the same signature."""

from bot.slack_signature import REPLAY_WINDOW_S, SignatureRefused, SlackSignatureVerifier, sign

__all__ = ["SignatureRefused", "SlackSignatureVerifier", "REPLAY_WINDOW_S", "sign"]
