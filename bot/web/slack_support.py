"""The Slack support channel as an agent surface (issue 16; docs/slack.md "The support channel").

    POST /slack/support/events    Slack's Events API: an agent's reply in a ticket's thread reaches the user
    POST /slack/support/actions   Slack's interactivity: the notification's Resume, Approve removal, Close

Ticket notifications are posted to the support channel with the bot token (`bot.handoff.slack_support`), so
each is the root of a thread. Here, in the web app next to the agent API whose services it uses:

- every request must carry Slack's v0 signature of its exact body with the signing secret, with a timestamp
  within five minutes (`bot.slack_signature`, framework-free); anything else is a 401;
- each event (`event_id`) and each click (its trigger id and action timestamp) is acted on once, on every
  replica (`bot.store.slack.first_delivery`): a replayed request within the window is answered and ignored;
- the Slack user must be mapped to an enabled agent (`keymedic agent link-slack`); what it does is recorded
  under that agent, exactly as the console and the agent API record it (`bot.web.agent`). Anyone else is told,
  privately (an ephemeral message), that they are not a KeyMedic agent, and nothing is done;
- Approve removal first answers privately with the confirmation the console states (the edits at stake,
  `bot.web.console.pages.edits_phrase`); only its Confirm button approves;
- each action refuses clearly, privately, when the ticket moved on (another agent closed it or approved);
- Close, like the console's, then asks the user the one CSAT question (`bot.web.agent.ask_csat`).

Outcomes are posted in the ticket's thread, so the team sees who did what.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs

import httpx
from aiohttp import web

from bot.config import Settings
from bot.handoff import services
from bot.handoff.rasa import RasaUnavailable, UnaddressableConversation
from bot.handoff.slack_support import APPROVE, CLOSE, CONFIRM_APPROVE, RESUME, api_url
from bot.slack_signature import SignatureRefused, SlackSignatureVerifier
from bot.store import agent_slack
from bot.store.agents import Agent
from bot.store.slack import DELIVERY_MEMORY, first_delivery, forget_deliveries
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web import agent as agent_api
from bot.web.console.pages import edits_phrase

__all__ = ["register", "EVENTS_PATH", "ACTIONS_PATH", "NOT_AN_AGENT"]

logger = logging.getLogger(__name__)

EVENTS_PATH: Final = "/slack/support/events"
ACTIONS_PATH: Final = "/slack/support/actions"
NOT_AN_AGENT: Final = (
    "You aren't a KeyMedic agent, so nothing was done and nothing reached the user. "
    "Ask an administrator to run `keymedic agent link-slack` for you."
)

_T = TypeVar("_T")
# How often one process prunes delivery keys older than `DELIVERY_MEMORY`.
_PRUNE_EVERY_S: Final = 3600.0


class _Support:
    def __init__(self, settings: Settings, verifier: SlackSignatureVerifier) -> None:
        self.channel = settings.slack_support_channel
        self.token = settings.slack_support_bot_token
        self.api = api_url(settings.slack_api_url)
        self.verifier = verifier
        self.client: httpx.AsyncClient | None = None
        self.pruned_at = 0.0


_STATE: Final[web.AppKey[_Support]] = web.AppKey("slack_support", _Support)


async def _in_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(function, *args, **kwargs)
    )


def _uow(request: web.Request) -> SqlAlchemyUnitOfWork:
    uow = agent_api.shared(request.app).uow_factory()
    assert isinstance(uow, SqlAlchemyUnitOfWork)
    return uow


async def _verified_body(request: web.Request) -> bytes:
    """The raw body of a request Slack signed within the replay window; raises 401 otherwise."""
    body = await request.read()
    try:
        request.app[_STATE].verifier.verify(
            request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature"), body
        )
    except SignatureRefused as refused:
        logger.warning("slack support: request refused (%s)", refused.code)
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": {"code": refused.code, "message": "Not signed by Slack."}}),
            content_type="application/json",
        ) from None
    return body


def _first_time(support: _Support, uow: SqlAlchemyUnitOfWork, key: str, now: datetime) -> bool:
    with uow:
        fresh = first_delivery(uow, key, now=now)
        # The keys outlive the five-minute replay window many times over; older ones go, as the Rasa
        # channel's do (it may be off where only the support channel is on).
        if time.monotonic() - support.pruned_at > _PRUNE_EVERY_S:
            forget_deliveries(uow, before=now - DELIVERY_MEMORY)
            support.pruned_at = time.monotonic()
        uow.commit()
        return fresh


async def _once(request: web.Request, key: str) -> bool:
    """True the first time `key` is seen by any replica; a replay (or Slack's retry) gets False."""
    support = request.app[_STATE]
    return await _in_thread(_first_time, support, _uow(request), key, agent_api.shared(request.app).clock())


async def _slack(request: web.Request, method: str, **arguments: Any) -> None:
    """Call a Slack Web API method with the bot token; a failure is logged (by its Slack error code), since
    the action it reports on is done or refused either way."""
    support = request.app[_STATE]
    assert support.client is not None
    try:
        response = await support.client.post(
            support.api + method, json=arguments, headers={"Authorization": f"Bearer {support.token}"}
        )
        answer = response.json()
        if not isinstance(answer, dict) or not answer.get("ok"):
            logger.warning("slack support: %s failed (%s)", method, (answer or {}).get("error"))
    except (httpx.HTTPError, ValueError) as error:
        logger.warning("slack support: %s failed (%s)", method, type(error).__name__)


async def _tell(
    request: web.Request, user: str, text: str, *, thread_ts: str | None = None, **extra: Any
) -> None:
    """A message only `user` sees, in the support channel (in the ticket's thread when known)."""
    channel = request.app[_STATE].channel
    arguments: dict[str, Any] = {"channel": channel, "user": user, "text": text, **extra}
    if thread_ts:
        arguments["thread_ts"] = thread_ts
    await _slack(request, "chat.postEphemeral", **arguments)


async def _announce(request: web.Request, thread_ts: str, text: str) -> None:
    await _slack(
        request, "chat.postMessage", channel=request.app[_STATE].channel, thread_ts=thread_ts, text=text
    )


def _slack_text(text: str) -> str:
    # Slack sends a message's text with &, < and > escaped (its "Formatting text" docs); users read it plain.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- events: a reply in a ticket's thread ------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    body = await _verified_body(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"error": {"code": "malformed_body", "message": "Not JSON."}}, status=400)
    if not isinstance(data, dict):
        return web.json_response(
            {"error": {"code": "malformed_body", "message": "Not an object."}}, status=400
        )
    if data.get("type") == "url_verification":
        return web.json_response({"challenge": str(data.get("challenge", ""))})
    event = data.get("event")
    if data.get("type") != "event_callback" or not isinstance(event, dict):
        return web.json_response({"status": "ignored"})
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        return web.json_response({"status": "ignored"})
    if not await _once(request, f"support-event:{event_id}"):
        return web.json_response({"status": "duplicate"})
    await _thread_reply(request, str(data.get("team_id") or ""), event)
    return web.json_response({"status": "ok"})


async def _thread_reply(request: web.Request, team: str, event: Mapping[str, Any]) -> None:
    support = request.app[_STATE]
    thread_ts, user, text = event.get("thread_ts"), event.get("user"), event.get("text")
    if (
        event.get("type") != "message"
        or event.get("subtype")  # edits, deletions, joins, and bots' own messages
        or event.get("bot_id")
        or event.get("channel") != support.channel
        or not isinstance(thread_ts, str)
        or thread_ts == event.get("ts")  # a message in the channel itself, not in a thread
        or not isinstance(user, str)
        or not isinstance(text, str)
        or not text.strip()
    ):
        return
    ticket_id = await _in_thread(agent_slack.ticket_of_thread, _uow(request), support.channel, thread_ts)
    if ticket_id is None:
        return  # a thread of something else in the channel
    agent = await _in_thread(agent_slack.agent_for_slack_user, _uow(request), team, user)
    if agent is None:
        await _tell(request, user, NOT_AN_AGENT, thread_ts=thread_ts)
        return
    text = _slack_text(text)
    if len(text) > agent_api.MAX_REPLY_CHARS:
        await _tell(
            request,
            user,
            f"A reply is at most {agent_api.MAX_REPLY_CHARS} characters; nothing was sent.",
            thread_ts=thread_ts,
        )
        return
    state = agent_api.shared(request.app)
    try:
        await agent_api.reply_and_record(state, ticket_id, text, agent)
    except services.TicketClosed:
        await _tell(
            request,
            user,
            f"Ticket #{ticket_id} is closed; your reply did not reach the user.",
            thread_ts=thread_ts,
        )
    except services.TicketNotFound:
        await _tell(
            request, user, f"Ticket #{ticket_id} no longer exists; nothing was sent.", thread_ts=thread_ts
        )
    except UnaddressableConversation:
        await _tell(
            request, user, "This conversation cannot be reached; nothing was sent.", thread_ts=thread_ts
        )
    except RasaUnavailable as error:
        logger.warning("slack support: %s", error)
        await _tell(
            request, user, "The assistant could not be reached; nothing was sent.", thread_ts=thread_ts
        )


# -- actions: the notification's buttons -------------------------------------------------------------------


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        fields = parse_qs(body.decode(), max_num_fields=5)
        payload = json.loads(fields["payload"][0])
    except (ValueError, UnicodeDecodeError, KeyError, IndexError):
        return None
    return payload if isinstance(payload, dict) else None


async def actions(request: web.Request) -> web.StreamResponse:
    body = await _verified_body(request)
    payload = _payload(body)
    if payload is None:
        return web.json_response({"error": {"code": "malformed_body", "message": "No payload."}}, status=400)
    clicked = payload.get("actions")
    user = payload.get("user") or {}
    team = (payload.get("team") or {}).get("id") or user.get("team_id")
    channel = (payload.get("channel") or {}).get("id")
    if (
        payload.get("type") != "block_actions"
        or not isinstance(clicked, list)
        or len(clicked) != 1
        or not isinstance(clicked[0], dict)
        or not isinstance(user.get("id"), str)
        or not isinstance(team, str)
        or not isinstance(clicked[0].get("action_ts"), str)
    ):
        return web.Response(status=200)
    action = clicked[0]
    # Slack gives each click its own trigger id and action timestamp: the same pair again is a replay.
    key = f"support-action:{team}:{user['id']}:{payload.get('trigger_id')}:{action.get('action_ts')}"
    if not await _once(request, key):
        return web.Response(status=200)
    if channel != request.app[_STATE].channel or action.get("action_id") not in (
        RESUME,
        APPROVE,
        CONFIRM_APPROVE,
        CLOSE,
    ):
        return web.Response(status=200)  # the "Open ticket" link button, or another app's message
    await _act(request, team, user["id"], str(action["action_id"]), str(action.get("value", "")))
    return web.Response(status=200)


def _last(view: Mapping[str, Any], action: str) -> str:
    for entry in reversed(view.get("history") or []):
        if entry.get("action") == action:
            return f"{entry.get('by')} at {entry.get('at')}"
    return "someone else"


async def _act(request: web.Request, team: str, user: str, action: str, value: str) -> None:
    support = request.app[_STATE]
    agent = await _in_thread(agent_slack.agent_for_slack_user, _uow(request), team, user)
    ticket_id = int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None
    thread_ts = (
        await _in_thread(agent_slack.thread_of_ticket, _uow(request), ticket_id, support.channel)
        if ticket_id is not None
        else None
    )
    if agent is None:
        await _tell(request, user, NOT_AN_AGENT, thread_ts=thread_ts)
        return
    if ticket_id is None or thread_ts is None:
        # Only tickets whose notification is in this channel are worked from it.
        await _tell(request, user, "That button is not a KeyMedic ticket's; nothing was done.")
        return
    state = agent_api.shared(request.app)
    try:
        view = await _in_thread(services.ticket_view, state.uow_factory(), ticket_id)
        if view["status"] == "closed":
            raise services.TicketClosed(f"ticket {ticket_id} is closed")
        done = await _do(request, agent, ticket_id, action, view, user, thread_ts)
    except services.TicketNotFound:
        await _tell(
            request, user, f"Ticket #{ticket_id} no longer exists; nothing was done.", thread_ts=thread_ts
        )
        return
    except services.TicketClosed:
        view = await _in_thread(services.ticket_view, state.uow_factory(), ticket_id)
        await _tell(
            request,
            user,
            f"Ticket #{ticket_id} was closed by {_last(view, 'close')}; nothing was done.",
            thread_ts=thread_ts,
        )
        return
    except UnaddressableConversation:
        await _tell(
            request, user, "This conversation cannot be reached; nothing was done.", thread_ts=thread_ts
        )
        return
    except RasaUnavailable as error:
        logger.warning("slack support: %s", error)
        await _tell(
            request, user, "The assistant could not be reached; nothing was done.", thread_ts=thread_ts
        )
        return
    if done:
        await _announce(request, thread_ts, done)


async def _do(
    request: web.Request,
    agent: Agent,
    ticket_id: int,
    action: str,
    view: Mapping[str, Any],
    user: str,
    thread_ts: str,
) -> str | None:
    """Do the clicked action as `agent`; the line for the thread, or None when only the clicker is told."""
    state = agent_api.shared(request.app)
    edits = edits_phrase(view.get("edits_at_stake"))
    if action == RESUME:
        await agent_api.resume_and_record(state, ticket_id, str(view["conversation_id"]), agent)
        return f"{agent.name} resumed the bot: it answers the user again."
    if action == APPROVE:
        approval = view.get("removal_approval") or {}
        if approval.get("approved"):
            await _tell(
                request, user, f"Removal was already approved by {approval.get('by')}.", thread_ts=thread_ts
            )
            return None
        text, blocks = _confirmation(view, agent, edits)
        await _tell(request, user, text, thread_ts=thread_ts, blocks=blocks)
        return None
    if action == CONFIRM_APPROVE:
        by, _ = await _in_thread(
            services.approve_removal, state.uow_factory(), ticket_id, agent=agent.identity, now=state.clock()
        )
        if by != agent.identity:
            await _tell(
                request,
                user,
                f"Removal was already approved by {by}; your approval was not recorded.",
                thread_ts=thread_ts,
            )
            return None
        return f"{agent.name} approved removal (loses {edits}); the user can now be walked through it."
    # Close: resume first, as the agent API and the console do, so a closed ticket never leaves a pause.
    conversation_id = str(view["conversation_id"])
    await agent_api.resume_and_record(state, ticket_id, conversation_id, agent)
    closed = await _in_thread(
        services.close_ticket, state.uow_factory(), ticket_id, agent=agent.identity, now=state.clock()
    )
    if not closed:
        raise services.TicketClosed(f"ticket {ticket_id} is closed")
    # CSAT (issue 16): the one rating question, as a close from the console asks it; only the winner of two
    # closes at once gets here, so the user is asked once.
    await agent_api.ask_csat(state, conversation_id)
    return f"{agent.name} closed the ticket; the bot answers the user again."


def _confirmation(view: Mapping[str, Any], agent: Agent, edits: str) -> tuple[str, Any]:
    """The console's removal confirmation (`pages.render_confirm_removal`), as Slack blocks."""
    ticket_id = view["id"]
    exchange = (view.get("wallet") or {}).get("exchange") or "the exchange"
    text = (
        f"Approve removing the {exchange} connection? Removing it loses the user's manual edits: *{edits}*. "
        "The user is then walked through removing and re-adding the connection. "
        f"The approval is recorded under your name ({agent.name})."
    )
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"keymedic_confirm_{ticket_id}",
            "elements": [
                {
                    "type": "button",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": f"Approve removal (loses {edits})"[:75]},
                    "action_id": CONFIRM_APPROVE,
                    "value": str(ticket_id),
                }
            ],
        },
    ]
    return text, blocks


def register(app: web.Application, settings: Settings) -> None:
    """Add the support channel's routes when it is configured (`KEYMEDIC_SLACK_SUPPORT_CHANNEL`, and the
    support app's bot token and signing secret); without them the paths are 404s. Needs the agent API's state
    (`bot.web.agent.register` first). Raises ValueError for a partial configuration: the web app does not
    start with one."""
    parts = {
        "KEYMEDIC_SLACK_SUPPORT_CHANNEL": settings.slack_support_channel,
        "KEYMEDIC_SLACK_SUPPORT_BOT_TOKEN": settings.slack_support_bot_token,
        "KEYMEDIC_SLACK_SUPPORT_SIGNING_SECRET": settings.slack_support_signing_secret,
    }
    missing = [name for name, value in parts.items() if not value]
    if missing and len(missing) < len(parts):
        # Half a configuration would quietly send notifications to the webhook (or nowhere) instead.
        raise ValueError(f"the Slack support channel also needs {', '.join(missing)}")
    if not settings.slack_support_enabled:
        return
    support = _Support(settings, SlackSignatureVerifier(settings.slack_support_signing_secret))
    app[_STATE] = support

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        support.client = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        yield
        await support.client.aclose()

    app.cleanup_ctx.append(lifetime)
    app.router.add_post(EVENTS_PATH, events)
    app.router.add_post(ACTIONS_PATH, actions)
