"""The agent API (DESIGN §6): what a support agent does with a hand-off ticket, over HTTP.

    GET  /agent/tickets/{id}                  the ticket: transcript, diagnosis, checklist, edits at stake,
                                              removal approval, history, notification deliveries
    POST /agent/tickets/{id}/reply            {"text"}: the text reaches the user in their chat
    POST /agent/tickets/{id}/resume           the bot answers again
    POST /agent/tickets/{id}/approve-removal  records who approved removal, and when
    POST /agent/tickets/{id}/close            {"resume"?: true}: closes (and by default resumes)

Every request needs `Authorization: Bearer <credential>`: the agent's own credential (`keymedic agent add`,
`bot.store.agents`), 401 otherwise — also for a revoked credential or a disabled agent. What the request does
is recorded under that agent (its email on the ticket, its name on a reply the user sees); an `agent` field in
the body is ignored, so nobody can act in someone else's name. Errors are `{"error": {"code", "message"}}` as
elsewhere in the web app: `unauthorized` 401, `not_found` 404, `invalid_request` 400, `ticket_closed` 409,
`rasa_unavailable` 502.

`KEYMEDIC_AGENT_TOKEN`, when set (at least 32 bytes), is the credential of one automation agent
(`env-automation@localhost`), re-asserted when the web app starts and revoked once the variable is gone.

Reading a ticket first refreshes its transcript from Rasa's tracker (best effort, redacted), so the messages
the user sent while the bot was paused are on it; `transcript_refreshed` says whether that worked.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Final, TypeVar

from aiohttp import web

from bot import csat
from bot.config import Settings
from bot.handoff import services
from bot.handoff.rasa import RasaConversations, RasaUnavailable, UnaddressableConversation
from bot.handoff.transcript import Redactor, load_redactor
from bot.store import agents
from bot.store.agents import Agent
from bot.store.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork

__all__ = [
    "register",
    "shared",
    "ask_csat",
    "refresh_transcript",
    "reply_and_record",
    "resume_and_record",
    "AGENT_PREFIX",
    "MAX_REPLY_CHARS",
]

logger = logging.getLogger(__name__)

AGENT_PREFIX: Final = "/agent/tickets"
MAX_REPLY_CHARS: Final = 4000
REFRESH_TIMEOUT_S: Final = 3.0

_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Agent:
    """What the handlers share: the database, Rasa, the redactor and the clock."""

    def __init__(
        self,
        env_token: str,
        uow_factory: Callable[[], AbstractUnitOfWork],
        rasa: RasaConversations,
        redactor: Redactor,
        clock: Callable[[], datetime],
    ) -> None:
        self.env_token = env_token
        self.uow_factory = uow_factory
        self.rasa = rasa
        self.redactor = redactor
        self.clock = clock


_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="keymedic-agent"'}
_STATE: Final[web.AppKey[_Agent]] = web.AppKey("agent_api", _Agent)


def shared(app: web.Application) -> _Agent:
    """The agent API's database, Rasa client, redactor and clock, for the console (`bot.web.console`),
    which acts through the same services and the same relay."""
    return app[_STATE]


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


async def _in_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(function, *args, **kwargs)
    )


def _authenticate(state: _Agent, token: str) -> Agent | None:
    uow = state.uow_factory()
    assert isinstance(uow, SqlAlchemyUnitOfWork)
    return agents.authenticate(uow, token, env_token=state.env_token)


def _authorized(handler: Callable[[web.Request, _Agent, Agent, int], Awaitable[web.Response]]) -> Handler:
    """The agent behind the bearer credential, then the ticket id; the handler gets the shared state, the
    authenticated agent and the id."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        state = request.app[_STATE]
        scheme, _, provided = request.headers.get("Authorization", "").partition(" ")
        agent = (
            await _in_thread(_authenticate, state, provided.strip()) if scheme.lower() == "bearer" else None
        )
        if agent is None:
            # One answer for a missing, unknown, revoked or disabled agent's credential.
            return _error(401, "unauthorized", "A valid agent credential is required.", **_CHALLENGE)
        try:
            ticket_id = int(request.match_info["ticket_id"])
        except ValueError:
            return _error(404, "not_found", "No such ticket.")
        try:
            return await handler(request, state, agent, ticket_id)
        except services.TicketNotFound:
            return _error(404, "not_found", f"No ticket {ticket_id}.")
        except services.TicketClosed:
            return _error(409, "ticket_closed", f"Ticket {ticket_id} is closed.")
        except UnaddressableConversation:
            return _error(
                409,
                "conversation_unreachable",
                "This conversation cannot be reached through Rasa; nothing was sent.",
            )
        except RasaUnavailable as error:
            logger.warning("agent API: %s", error)
            return _error(502, "rasa_unavailable", "The assistant could not be reached; nothing was sent.")
        except _BadRequest as error:
            return _error(400, "invalid_request", str(error))

    return checked


class _BadRequest(Exception):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise _BadRequest("The body must be a JSON object.")
    return data


async def resume_and_record(state: _Agent, ticket_id: int, conversation_id: str, agent: Agent) -> None:
    """Resume the conversation in Rasa, then record that `agent` did (even on a ticket closed meanwhile:
    Rasa has resumed it all the same)."""
    await state.rasa.resume(conversation_id)
    await _in_thread(
        services.record_agent_action,
        state.uow_factory(),
        ticket_id,
        agent=agent.identity,
        action="resume",
        now=state.clock(),
        require_open=False,
    )


async def ask_csat(state: _Agent, conversation_id: str) -> bool:
    """After a ticket closed with the bot answering again: the one rating question (bot.csat), through the
    conversation's channel. Best effort (the ticket is closed either way); True when Rasa took it."""
    try:
        await state.rasa.send_bot_message(conversation_id, csat.QUESTION, buttons=csat.rating_buttons())
    except (RasaUnavailable, UnaddressableConversation) as error:
        logger.warning("agent API: no rating question after the close (%s)", type(error).__name__)
        return False
    return True


async def refresh_transcript(state: _Agent, ticket_id: int, conversation_id: str, *, caller: str) -> bool:
    """Re-read the conversation from Rasa and store its transcript, redacted, before a ticket is shown. Best
    effort: when Rasa does not answer within `REFRESH_TIMEOUT_S` the stored transcript is shown, and this
    says so (False), logged under `caller`."""
    try:
        events = await asyncio.wait_for(state.rasa.events(conversation_id), REFRESH_TIMEOUT_S)
        await _in_thread(
            services.record_transcript,
            state.uow_factory(),
            conversation_id,
            events,
            state.redactor,
            now=state.clock(),
        )
    except (RasaUnavailable, asyncio.TimeoutError) as error:
        logger.info("%s: transcript of ticket %d not refreshed (%s)", caller, ticket_id, type(error).__name__)
        return False
    return True


@_authorized
async def get_ticket(request: web.Request, state: _Agent, agent: Agent, ticket_id: int) -> web.Response:
    conversation_id = await _in_thread(services.conversation_of, state.uow_factory(), ticket_id)
    refreshed = await refresh_transcript(state, ticket_id, conversation_id, caller="agent API")
    view = await _in_thread(services.ticket_view, state.uow_factory(), ticket_id)
    return web.json_response({"ticket": view, "transcript_refreshed": refreshed})


@_authorized
async def reply(request: web.Request, state: _Agent, agent: Agent, ticket_id: int) -> web.Response:
    data = await _body(request)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY_CHARS:
        raise _BadRequest(f"`text` must be the reply (1 to {MAX_REPLY_CHARS} characters).")
    await reply_and_record(state, ticket_id, text, agent)
    return web.json_response({"status": "sent", "ticket_id": ticket_id})


async def reply_and_record(state: _Agent, ticket_id: int, text: str, agent: Agent) -> None:
    """Relay an agent's reply into the ticket's conversation and record it under the agent (the agent API's
    and the console's reply alike)."""
    conversation_id = await _in_thread(services.ensure_open, state.uow_factory(), ticket_id)
    # The user sees the agent's name; the ticket records who it is.
    await state.rasa.send_agent_message(conversation_id, text, agent=agent.name)
    await _in_thread(
        services.record_agent_action,
        state.uow_factory(),
        ticket_id,
        agent=agent.identity,
        action="reply",
        now=state.clock(),
        require_open=False,  # it was sent: record it even if the ticket closed meanwhile
        chars=len(text),
    )


@_authorized
async def resume(request: web.Request, state: _Agent, agent: Agent, ticket_id: int) -> web.Response:
    await _body(request)
    conversation_id = await _in_thread(services.conversation_of, state.uow_factory(), ticket_id)
    await resume_and_record(state, ticket_id, conversation_id, agent)
    return web.json_response({"status": "resumed", "ticket_id": ticket_id})


@_authorized
async def approve_removal(request: web.Request, state: _Agent, agent: Agent, ticket_id: int) -> web.Response:
    await _body(request)
    by, at = await _in_thread(
        services.approve_removal, state.uow_factory(), ticket_id, agent=agent.identity, now=state.clock()
    )
    return web.json_response(
        {"ticket_id": ticket_id, "removal_approval": {"approved": True, "by": by, "at": at.isoformat()}}
    )


@_authorized
async def close(request: web.Request, state: _Agent, agent: Agent, ticket_id: int) -> web.Response:
    data = await _body(request)
    also_resume = data.get("resume", True)
    if not isinstance(also_resume, bool):
        raise _BadRequest("`resume` must be true or false.")
    conversation_id = await _in_thread(services.conversation_of, state.uow_factory(), ticket_id)
    if also_resume:
        # First: a ticket is never closed on a conversation that stays paused for lack of Rasa.
        await resume_and_record(state, ticket_id, conversation_id, agent)
    closed = await _in_thread(
        services.close_ticket, state.uow_factory(), ticket_id, agent=agent.identity, now=state.clock()
    )
    if closed and also_resume:
        await ask_csat(state, conversation_id)
    return web.json_response(
        {"status": "closed", "ticket_id": ticket_id, "already_closed": not closed, "resumed": also_resume}
    )


def register(
    app: web.Application,
    settings: Settings,
    *,
    uow_factory: Callable[[], AbstractUnitOfWork],
    clock: Callable[[], datetime],
    redactor: Redactor | None = None,
) -> None:
    """Add the agent API's routes to the web app (`bot.web.app.build_app` calls this).

    Raises ValueError for a `KEYMEDIC_AGENT_TOKEN` shorter than 32 bytes: a guessable credential must not
    open the agent API, so the web app does not start with one."""
    if settings.agent_token and len(settings.agent_token.encode()) < agents.MIN_TOKEN_BYTES:
        raise ValueError(f"KEYMEDIC_AGENT_TOKEN must be at least {agents.MIN_TOKEN_BYTES} bytes")
    rasa = RasaConversations(settings.rasa_base_url, token=settings.rasa_token)
    app[_STATE] = _Agent(settings.agent_token, uow_factory, rasa, redactor or load_redactor(), clock)

    def sync_env_credential() -> None:
        from sqlalchemy.exc import IntegrityError

        for attempt in (1, 2):
            uow = uow_factory()
            assert isinstance(uow, SqlAlchemyUnitOfWork)
            try:
                agents.sync_env_credential(uow, settings.agent_token)
                return
            except IntegrityError:
                # Another replica starting at the same moment wrote the same agent first; once more finds it.
                if attempt == 2:
                    raise

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if settings.agent_token:
            # Without the variable nothing is written: `authenticate` refuses a stale environment credential,
            # and a web app that serves no agent (the tests of other routes) needs no database at start.
            await _in_thread(sync_env_credential)
        yield
        await rasa.aclose()

    app.cleanup_ctx.append(lifetime)
    app.router.add_get(AGENT_PREFIX + "/{ticket_id}", get_ticket)
    app.router.add_post(AGENT_PREFIX + "/{ticket_id}/reply", reply)
    app.router.add_post(AGENT_PREFIX + "/{ticket_id}/resume", resume)
    app.router.add_post(AGENT_PREFIX + "/{ticket_id}/approve-removal", approve_removal)
    app.router.add_post(AGENT_PREFIX + "/{ticket_id}/close", close)
