"""The Slack support channel as an agent surface (issue 16), through the local Slack stand-in: the real web
app over HTTP, on SQLite and PostgreSQL, with the ticket notification posted by the outbox with the bot token,
signed Slack requests, and a stand-in for Rasa's HTTP API (the relay the console and the agent API use)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from bot import csat
from bot.config import Settings
from bot.handoff.outbox import RetryPolicy, deliver_due
from bot.handoff.services import SUPPORT_REASONS, removal_approved, ticket_view
from bot.handoff.slack_support import APPROVE, CLOSE, CONFIRM_APPROVE, RESUME, SlackSupportPoster
from bot.handoff.transcript import AGENT_METADATA_KEY
from bot.store import agent_slack, agents
from bot.web.app import build_app
from bot.web.console.pages import edits_phrase
from bot.web.slack_support import ACTIONS_PATH, EVENTS_PATH, NOT_AN_AGENT
from tests.support.slack import (
    FakeSlackApi,
    SlackCall,
    block_actions_form,
    event_body,
    message_event,
    signed_headers,
)
from tests.support.web import serve_web_app

from .conftest import FakeRasa, Tickets

pytestmark = pytest.mark.integration

SECRET = "support-signing-secret-for-tests"
BOT_TOKEN = "xoxb-support-tests"
TEAM, CHANNEL = "T0SUPPORT", "C0SUPPORT"
SAM_SLACK, KIM_SLACK, STRANGER = "U0SAM", "U0KIM", "U0STRANGER"
SAM, KIM = "sam@support.example", "kim@support.example"
FORM = "application/x-www-form-urlencoded"


@dataclass
class SupportChannel:
    url: str
    tickets: Tickets
    rasa: FakeRasa
    slack: FakeSlackApi
    poster: SlackSupportPoster

    async def notify(self, conversation_id: str) -> tuple[int, str]:
        """Open a ticket and deliver its notification to the support channel: its id and thread ts."""
        ticket_id = await self.tickets.open(conversation_id)
        report = deliver_due(
            self.tickets.uow_factory, self.poster, reasons=SUPPORT_REASONS, policy=RetryPolicy()
        )
        assert len(report.delivered) == 1, report
        thread_ts = agent_slack.thread_of_ticket(self.tickets.uow_factory(), ticket_id, CHANNEL)
        assert thread_ts is not None
        return ticket_id, thread_ts

    def post(self, path: str, body: bytes, content_type: str, timestamp: int | None = None) -> httpx.Response:
        headers = signed_headers(SECRET, body, content_type=content_type, timestamp=timestamp)
        return httpx.post(self.url + path, content=body, headers=headers, timeout=10, trust_env=False)

    def reply(self, user: str, text: str, thread_ts: str, *, event_id: str) -> httpx.Response:
        ts = f"{time.time():.6f}"
        event = message_event(
            user=user, text=text, channel=CHANNEL, ts=ts, thread_ts=thread_ts, channel_type="channel"
        )
        return self.post(EVENTS_PATH, event_body(TEAM, event, event_id=event_id), "application/json")

    def click_form(self, user: str, action_id: str, ticket_id: int, thread_ts: str) -> bytes:
        return block_actions_form(
            team=TEAM,
            user=user,
            channel=CHANNEL,
            message={"type": "message", "ts": thread_ts, "text": "hand-off"},
            action={"action_id": action_id, "value": str(ticket_id), "type": "button"},
        )

    def click(self, user: str, action_id: str, ticket_id: int, thread_ts: str) -> httpx.Response:
        return self.post(ACTIONS_PATH, self.click_form(user, action_id, ticket_id, thread_ts), FORM)

    def told(self, user: str) -> list[str]:
        """What the support channel showed only to `user` (ephemeral messages), in order."""
        return [
            c.arguments["text"]
            for c in self.slack.calls_to("chat.postEphemeral")
            if c.arguments["user"] == user
        ]

    def announced(self, thread_ts: str) -> list[str]:
        return [c.arguments["text"] for c in self.slack.calls_to("chat.postMessage", thread_ts=thread_ts)]

    def agent_messages(self) -> list[dict[str, Any]]:
        """The agents' replies relayed into the conversation (not the bot's own rating question)."""
        return [
            event
            for request in self.rasa.requests
            if request["method"] == "POST" and isinstance(request["json"], list)  # not a trigger_intent
            for event in request["json"]
            if event.get("event") == "bot" and AGENT_METADATA_KEY in (event.get("metadata") or {})
        ]


@pytest.fixture
def support(
    settings: Settings, uow_factory: Any, tickets: Tickets, fake_rasa: FakeRasa
) -> Iterator[SupportChannel]:
    for email, name, slack_user in ((SAM, "Sam", SAM_SLACK), (KIM, "Kim", KIM_SLACK)):
        agents.add_agent(uow_factory(), email=email, name=name)
        agent_slack.link_slack_user(uow_factory(), email, TEAM, slack_user)
    with FakeSlackApi() as slack:
        configured = replace(
            settings,
            rasa_url=fake_rasa.url,
            rasa_token="rasa-secret",
            slack_support_signing_secret=SECRET,
            slack_support_bot_token=BOT_TOKEN,
            slack_api_url=slack.api_url,
            slack_support_channel=CHANNEL,
        )
        poster = SlackSupportPoster(
            token=BOT_TOKEN,
            channel=CHANNEL,
            uow_factory=uow_factory,
            web_base_url=configured.web_base_url,
            slack_api_url=slack.api_url,
        )
        app = build_app(configured, uow_factory=uow_factory)
        try:
            with serve_web_app(app) as url:
                yield SupportChannel(url, tickets, fake_rasa, slack, poster)
        finally:
            poster.close()


def _buttons(call: SlackCall) -> dict[str, str]:
    actions = next(b for b in call.arguments["blocks"] if b["type"] == "actions")
    return {e["action_id"]: e.get("value", "") for e in actions["elements"]}


async def test_the_notification_is_posted_with_the_bot_token_and_starts_the_tickets_thread(
    support: SupportChannel,
) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    (posted,) = support.slack.calls_to("chat.postMessage")
    assert posted.token == BOT_TOKEN and posted.arguments["channel"] == CHANNEL
    assert f"hand-off #{ticket_id}" in posted.arguments["text"]
    buttons = _buttons(posted)
    assert {RESUME, APPROVE, CLOSE} <= buttons.keys()
    assert {buttons[a] for a in (RESUME, APPROVE, CLOSE)} == {str(ticket_id)}
    assert agent_slack.ticket_of_thread(support.tickets.uow_factory(), CHANNEL, thread_ts) == ticket_id


async def test_an_agents_threaded_reply_reaches_the_user_recorded_under_that_agent(
    support: SupportChannel,
) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    response = support.reply(
        SAM_SLACK, "Turn on Query Funds &amp; save &lt;then&gt; retry", thread_ts, event_id="Ev1"
    )
    assert response.status_code == 200
    (message,) = support.agent_messages()
    assert message["text"] == "Turn on Query Funds & save <then> retry"  # as Slack's escaping meant it
    assert message["metadata"] == {"keymedic_agent": "Sam"}
    assert support.rasa.requests[0]["path"] == "/conversations/conv-1/tracker/events"
    history = ticket_view(support.tickets.uow_factory(), ticket_id)["history"]
    assert [(h["action"], h["by"]) for h in history] == [("reply", SAM)]
    # Slack retries an event it thinks was lost: the user gets the reply once.
    assert support.reply(SAM_SLACK, "again", thread_ts, event_id="Ev1").status_code == 200
    assert len(support.agent_messages()) == 1


async def test_a_reply_from_an_unmapped_slack_user_never_reaches_the_user(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    assert support.reply(STRANGER, "hello from outside", thread_ts, event_id="Ev2").status_code == 200
    assert support.agent_messages() == []
    assert support.told(STRANGER) == [NOT_AN_AGENT]
    assert ticket_view(support.tickets.uow_factory(), ticket_id)["history"] == []


async def test_a_reply_outside_a_tickets_thread_is_not_relayed(support: SupportChannel) -> None:
    await support.notify("conv-1")
    assert (
        support.reply(SAM_SLACK, "chatter in another thread", "1700000000.000001", event_id="Ev3").status_code
        == 200
    )
    assert support.agent_messages() == [] and support.told(SAM_SLACK) == []


async def test_unsigned_forged_and_stale_requests_are_refused(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    body = support.click_form(SAM_SLACK, CLOSE, ticket_id, thread_ts)
    unsigned = httpx.post(
        support.url + ACTIONS_PATH, content=body, headers={"Content-Type": FORM}, trust_env=False
    )
    forged_headers = signed_headers("not-the-secret", body, content_type=FORM)
    forged = httpx.post(support.url + ACTIONS_PATH, content=body, headers=forged_headers, trust_env=False)
    stale = support.post(ACTIONS_PATH, body, FORM, timestamp=int(time.time()) - 600)
    event = message_event(user=SAM_SLACK, text="hi", channel=CHANNEL, ts="1.2", thread_ts=thread_ts)
    forged_event = httpx.post(
        support.url + EVENTS_PATH,
        content=event_body(TEAM, event, event_id="Ev4"),
        headers=signed_headers("not-the-secret", b"{}", content_type="application/json"),
        trust_env=False,
    )
    assert [r.status_code for r in (unsigned, forged, stale, forged_event)] == [401, 401, 401, 401]
    assert support.rasa.requests == [] and support.agent_messages() == []
    assert ticket_view(support.tickets.uow_factory(), ticket_id)["status"] == "open"


async def test_a_click_from_an_unmapped_slack_user_is_refused(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    for action in (RESUME, APPROVE, CONFIRM_APPROVE, CLOSE):
        assert support.click(STRANGER, action, ticket_id, thread_ts).status_code == 200
    assert support.told(STRANGER) == [NOT_AN_AGENT] * 4
    view = ticket_view(support.tickets.uow_factory(), ticket_id)
    assert view["status"] == "open" and view["bot_paused"] is True and view["history"] == []
    assert not removal_approved(support.tickets.uow_factory(), "conv-1")
    assert support.rasa.requests == []


async def test_a_disabled_agents_slack_user_acts_as_nobody(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    agents.disable_agent(support.tickets.uow_factory(), KIM)
    support.click(KIM_SLACK, CLOSE, ticket_id, thread_ts)
    assert support.told(KIM_SLACK) == [NOT_AN_AGENT]
    assert ticket_view(support.tickets.uow_factory(), ticket_id)["status"] == "open"


async def test_a_replayed_click_is_ignored(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    body = support.click_form(SAM_SLACK, RESUME, ticket_id, thread_ts)
    first = support.post(ACTIONS_PATH, body, FORM)
    # The same signed request again, within the five-minute window (a fresh timestamp, re-signed even).
    replayed = support.post(ACTIONS_PATH, body, FORM)
    assert first.status_code == 200 and replayed.status_code == 200
    history = ticket_view(support.tickets.uow_factory(), ticket_id)["history"]
    assert [(h["action"], h["by"]) for h in history] == [("resume", SAM)]
    resumes = [
        r for r in support.rasa.requests if r["method"] == "POST" and r["json"][0]["event"] == "resume"
    ]
    assert len(resumes) == 1
    assert support.announced(thread_ts) == ["Sam resumed the bot: it answers the user again."]


async def test_approve_removal_needs_the_confirmation_that_names_the_edits_at_stake(
    support: SupportChannel,
) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    uow_factory = support.tickets.uow_factory
    edits = edits_phrase(ticket_view(uow_factory(), ticket_id)["edits_at_stake"])
    support.click(SAM_SLACK, APPROVE, ticket_id, thread_ts)
    assert not removal_approved(uow_factory(), "conv-1")  # the first click only asks
    (confirmation,) = [
        c for c in support.slack.calls_to("chat.postEphemeral") if c.arguments["user"] == SAM_SLACK
    ]
    assert f"loses the user's manual edits: *{edits}*" in confirmation.arguments["text"]
    assert "Approve removing the kraken connection?" in confirmation.arguments["text"]
    assert confirmation.arguments["thread_ts"] == thread_ts
    assert _buttons(confirmation) == {CONFIRM_APPROVE: str(ticket_id)}
    support.click(SAM_SLACK, CONFIRM_APPROVE, ticket_id, thread_ts)
    view = ticket_view(uow_factory(), ticket_id)
    assert view["removal_approval"]["approved"] is True and view["removal_approval"]["by"] == SAM
    assert support.announced(thread_ts) == [
        f"Sam approved removal (loses {edits}); the user can now be walked through it."
    ]
    # Kim confirms a stale confirmation: the first approval stands, and Kim is told.
    support.click(KIM_SLACK, CONFIRM_APPROVE, ticket_id, thread_ts)
    assert ticket_view(uow_factory(), ticket_id)["removal_approval"]["by"] == SAM
    assert support.told(KIM_SLACK) == [
        f"Removal was already approved by {SAM}; your approval was not recorded."
    ]


async def test_two_agents_closing_at_once_one_wins_and_the_other_is_told(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def close(user: str) -> None:
        start.wait()
        answers[user] = support.click(user, CLOSE, ticket_id, thread_ts).status_code

    threads = [threading.Thread(target=close, args=(u,)) for u in (SAM_SLACK, KIM_SLACK)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == {SAM_SLACK: 200, KIM_SLACK: 200}
    view = ticket_view(support.tickets.uow_factory(), ticket_id)
    closes = [h["by"] for h in view["history"] if h["action"] == "close"]
    assert view["status"] == "closed" and len(closes) == 1
    winner, loser = (SAM_SLACK, KIM_SLACK) if closes == [SAM] else (KIM_SLACK, SAM_SLACK)
    assert len([t for t in support.announced(thread_ts) if "closed the ticket" in t]) == 1
    (refusal,) = support.told(loser)
    assert (
        refusal.startswith(f"Ticket #{ticket_id} was closed by {closes[0]}") and "nothing was done" in refusal
    )
    assert support.told(winner) == []
    # And a reply after the close does not reach the user.
    support.reply(SAM_SLACK, "one more thing", thread_ts, event_id="Ev5")
    assert support.agent_messages() == []
    assert support.told(SAM_SLACK)[-1] == f"Ticket #{ticket_id} is closed; your reply did not reach the user."


async def test_closing_from_slack_asks_the_user_to_rate_the_help_once(support: SupportChannel) -> None:
    ticket_id, thread_ts = await support.notify("conv-1")
    assert support.click(SAM_SLACK, CLOSE, ticket_id, thread_ts).status_code == 200
    assert support.click(KIM_SLACK, CLOSE, ticket_id, thread_ts).status_code == 200  # closed already
    # After the resume, as from the console: the question goes to a conversation the bot answers again.
    posts = [r for r in support.rasa.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/conversations/conv-1/tracker/events"] * 2
    assert posts[0]["json"][0]["event"] == "resume"
    question = {"event": "bot", "text": csat.QUESTION, "data": {"buttons": csat.rating_buttons()}}
    assert posts[1]["json"] == [question]
    assert ticket_view(support.tickets.uow_factory(), ticket_id)["status"] == "closed"
    assert support.told(KIM_SLACK)[0].startswith(f"Ticket #{ticket_id} was closed by {SAM}")


def test_the_slack_user_must_be_team_and_user_ids() -> None:
    assert agent_slack.parse_slack_user(" T0SUPPORT:U0SAM ") == ("T0SUPPORT", "U0SAM")
    for wrong in ("U0SAM", "T0SUPPORT:", "t0support:u0sam", "T0SUPPORT:U0SAM:X", "T0:U0 SAM"):
        with pytest.raises(agents.InvalidAgent):
            agent_slack.parse_slack_user(wrong)


async def test_the_outbox_worker_posts_to_the_support_channel_once_it_is_configured(
    settings: Settings, tickets: Tickets, uow_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from bot.jobs import run_outbox_delivery

    ticket_id = await tickets.open("conv-1")
    with FakeSlackApi() as slack:
        for name, value in {
            "KEYMEDIC_DATABASE_URL": settings.database_url,
            "KEYMEDIC_ENCRYPTION_KEYS": settings.encryption_keys,
            "KEYMEDIC_VAR_DIR": str(tmp_path / "var"),
            "KEYMEDIC_SUPPORT_WEBHOOK_URL": "",
            "KEYMEDIC_SLACK_API_URL": slack.api_url,
            "KEYMEDIC_SLACK_SUPPORT_CHANNEL": CHANNEL,
            "KEYMEDIC_SLACK_SUPPORT_BOT_TOKEN": BOT_TOKEN,
            "KEYMEDIC_SLACK_SUPPORT_SIGNING_SECRET": SECRET,
        }.items():
            monkeypatch.setenv(name, value)
        result = run_outbox_delivery()
        (posted,) = slack.calls_to("chat.postMessage")
    assert result["configured"] is True and len(result["delivered"]) == 1
    assert posted.token == BOT_TOKEN and posted.arguments["channel"] == CHANNEL
    assert agent_slack.thread_of_ticket(uow_factory(), ticket_id, CHANNEL) is not None


async def test_a_refused_post_is_a_failed_delivery_and_records_no_thread(
    settings: Settings, tickets: Tickets, uow_factory: Any
) -> None:
    ticket_id = await tickets.open("conv-1")

    def not_in_channel(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": False, "error": "not_in_channel"})

    poster = SlackSupportPoster(
        token=BOT_TOKEN,
        channel=CHANNEL,
        uow_factory=uow_factory,
        web_base_url=settings.web_base_url,
        transport=httpx.MockTransport(not_in_channel),
    )
    with poster:
        report = deliver_due(uow_factory, poster, reasons=SUPPORT_REASONS, policy=RetryPolicy())
    assert len(report.failed) == 1 and report.delivered == []
    (notification,) = ticket_view(uow_factory(), ticket_id)["notifications"]
    assert (
        notification["status"] == "pending" and notification["last_error"] == "Slack refused: not_in_channel"
    )
    assert BOT_TOKEN not in repr(poster)
    assert agent_slack.thread_of_ticket(uow_factory(), ticket_id, CHANNEL) is None


def test_the_web_app_refuses_half_a_support_channel_configuration(
    settings: Settings, uow_factory: Any
) -> None:
    with pytest.raises(ValueError, match="KEYMEDIC_SLACK_SUPPORT_SIGNING_SECRET"):
        build_app(
            replace(settings, slack_support_channel=CHANNEL, slack_support_bot_token=BOT_TOKEN),
            uow_factory=uow_factory,
        )


def test_keymedic_agent_link_slack_maps_one_slack_user_to_one_agent(
    database_url: str,
    uow_factory: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main

    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    for email, name in ((SAM, "Sam"), (KIM, "Kim")):
        agents.add_agent(uow_factory(), email=email, name=name)
    assert main(["agent", "link-slack", SAM, "--slack-user", f"{TEAM}:{SAM_SLACK}"]) == 0
    assert f"{TEAM}:{SAM_SLACK} acts as {SAM}" in capsys.readouterr().out
    assert agent_slack.agent_for_slack_user(uow_factory(), TEAM, SAM_SLACK).email == SAM  # type: ignore[union-attr]
    assert agent_slack.agent_for_slack_user(uow_factory(), "T0OTHER", SAM_SLACK) is None  # ids are per team
    # Mapped again, the Slack user acts as the new agent only.
    assert main(["agent", "link-slack", KIM, "--slack-user", f"{TEAM}:{SAM_SLACK}"]) == 0
    assert agent_slack.agent_for_slack_user(uow_factory(), TEAM, SAM_SLACK).email == KIM  # type: ignore[union-attr]
    assert main(["agent", "link-slack", "nobody@support.example", "--slack-user", f"{TEAM}:U0X"]) == 2
    assert main(["agent", "link-slack", SAM, "--slack-user", "not-an-id"]) == 2


async def test_slacks_url_verification_is_answered_only_when_signed(support: SupportChannel) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "unused"}).encode()
    signed = support.post(EVENTS_PATH, body, "application/json")
    unsigned = httpx.post(
        support.url + EVENTS_PATH, content=body, headers={"Content-Type": "application/json"}, trust_env=False
    )
    assert signed.status_code == 200 and signed.json() == {"challenge": "c-123"}
    assert unsigned.status_code == 401 and "c-123" not in unsigned.text
