"""The console's HTTP handlers (issue 16).

    GET  /agent                         the queue (or a redirect to sign-in)
    GET  /agent/sign-in, POST           sign in with email and password
    POST /agent/sign-out                end the session
    GET  /agent/set-password, POST      the one-time link's page (`keymedic agent add|password-link`)
    GET  /agent/queue.json              the queue as JSON, with an ETag (the page polls it)
    GET  /agent/ticket/{id}             the ticket (its transcript refreshed from Rasa first)
    GET  /agent/ticket/{id}.json        the same as JSON, with an ETag (the page polls it)
    GET  /agent/ticket/{id}/approve-removal   the confirmation, restating the edits at stake
    POST /agent/ticket/{id}/reply | resume | approve-removal | close

The session is a random token in the `km_agent` cookie: HttpOnly, SameSite=Strict, Secure whenever the
console is served over https (`KEYMEDIC_WEB_PUBLIC_URL`). Every POST carries a CSRF token: for a session, an
HMAC of the session's secret (`agent_signin.csrf_token`); before sign-in (the sign-in and set-password forms),
a random value that must match a cookie set with the form (double submit). A POST without it does nothing.
Each action acts through `bot.handoff.services` under the signed-in agent, and refuses with 409 and who did
what when the ticket moved on meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from bot.config import Settings
from bot.handoff import queue, services
from bot.handoff.rasa import RasaUnavailable, UnaddressableConversation
from bot.store import agent_signin
from bot.store.agents import Agent
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web import agent as agent_api
from bot.web.console import pages

__all__ = ["register", "SESSION_COOKIE", "PRESESSION_COOKIE"]

logger = logging.getLogger(__name__)

SESSION_COOKIE: Final = "km_agent"
PRESESSION_COOKIE: Final = "km_agent_form"
STATIC_DIR: Final = Path(__file__).parent / "static"
REFRESH_TIMEOUT_S: Final = 3.0
_STATIC_TYPES: Final = {"console.js": "text/javascript", "console.css": "text/css"}


class _Console:
    def __init__(self, settings: Settings) -> None:
        self.secure = settings.web_base_url.startswith("https://")


_CONSOLE: Final[web.AppKey[_Console]] = web.AppKey("agent_console", _Console)


def _html(page: str, status: int = 200) -> web.Response:
    response = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
    response.headers["Content-Security-Policy"] = pages.CSP
    return response


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/agent",
        httponly=True,
        samesite="Strict",
        secure=request.app[_CONSOLE].secure,
    )


def _uow(request: web.Request) -> SqlAlchemyUnitOfWork:
    uow = agent_api.shared(request.app).uow_factory()
    assert isinstance(uow, SqlAlchemyUnitOfWork)
    return uow


async def _run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await agent_api._in_thread(function, *args, **kwargs)


async def _signed_in(request: web.Request) -> tuple[Agent, str] | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    found = await _run(
        agent_signin.session_agent, _uow(request), token, now=agent_api.shared(request.app).clock()
    )
    return (found, token) if found is not None else None


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    posted = await request.post()
    return {key: value for key, value in posted.items() if isinstance(value, str)}


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _csrf_refused() -> web.Response:
    return _html(pages.render_message("Refused", "The form had no valid CSRF token; nothing was done."), 403)


# -- sign-in -------------------------------------------------------------------------------------------------


def _presession_form(
    request: web.Request, render: Callable[..., str], status: int = 200, **kw: Any
) -> web.Response:
    """A sign-in or set-password form with a fresh double-submit CSRF value, in the form and in a cookie."""
    value = secrets.token_urlsafe(24)
    response = _html(render(value, **kw), status)
    _set_cookie(request, response, PRESESSION_COOKIE, value, 3600)
    return response


def _presession_ok(request: web.Request, form: dict[str, str]) -> bool:
    return _same(form.get("csrf", ""), request.cookies.get(PRESESSION_COOKIE, ""))


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    if await _signed_in(request):
        raise web.HTTPSeeOther("/agent")
    return _presession_form(request, pages.render_sign_in)


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if not _presession_ok(request, form):
        return _csrf_refused()
    try:
        agent, token = await _run(
            agent_signin.sign_in,
            _uow(request),
            form.get("email", ""),
            form.get("password", ""),
            now=agent_api.shared(request.app).clock(),
        )
    except agent_signin.SignInRefused as error:
        logger.info("console: a sign-in was refused")
        return _presession_form(request, pages.render_sign_in, 401, error=str(error))
    logger.info("console: agent %d signed in", agent.id)
    response = web.HTTPSeeOther("/agent")
    _set_cookie(request, response, SESSION_COOKIE, token, int(agent_signin.SESSION_LIFETIME.total_seconds()))
    response.del_cookie(PRESESSION_COOKIE, path="/agent")
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or not _same(form.get("csrf", ""), agent_signin.csrf_token(token)):
        return _csrf_refused()
    await _run(agent_signin.end_session, _uow(request), token)
    response = web.HTTPSeeOther("/agent/sign-in")
    response.del_cookie(SESSION_COOKIE, path="/agent")
    raise response


async def set_password_page(request: web.Request) -> web.StreamResponse:
    # The link's token is in the URL fragment; the page's script moves it into the form (never into a URL).
    return _presession_form(request, pages.render_set_password)


async def set_password(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if not _presession_ok(request, form):
        return _csrf_refused()
    try:
        agent = await _run(
            agent_signin.set_password,
            _uow(request),
            form.get("token", ""),
            form.get("password", ""),
            now=agent_api.shared(request.app).clock(),
        )
    except agent_signin.WeakPassword as error:
        return _presession_form(request, pages.render_set_password, 400, error=str(error))
    except agent_signin.LinkUnusable as error:
        return _html(pages.render_message("Link not usable", str(error)), 410)
    logger.info("console: agent %d set a password", agent.id)
    return _html(pages.render_message("Password set", "Your password is set. Sign in at /agent/sign-in."))


# -- the queue and the ticket --------------------------------------------------------------------------------

Page = Callable[[web.Request, Agent, str], Awaitable[web.StreamResponse]]


def _page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The signed-in agent (else: a redirect to sign-in for a page, 401 for JSON) and, for a POST, a valid
    CSRF token."""

    async def checked(request: web.Request) -> web.StreamResponse:
        found = await _signed_in(request)
        if found is None:
            if request.path.endswith(".json"):
                return web.json_response(
                    {"error": {"code": "unauthorized", "message": "Sign in again."}}, status=401
                )
            raise web.HTTPSeeOther("/agent/sign-in")
        agent, token = found
        if request.method == "POST":
            form = await _form(request)
            if not _same(form.get("csrf", ""), agent_signin.csrf_token(token)):
                return _csrf_refused()
            request["form"] = form
        return await handler(request, agent, agent_signin.csrf_token(token))

    return checked


def _etagged(request: web.Request, data: Any) -> web.Response:
    body = json.dumps(data, sort_keys=True, default=str)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(text=body, content_type="application/json", headers={"ETag": etag})


def _queue_data(request: web.Request) -> Any:
    state = agent_api.shared(request.app)
    return queue.open_queue(state.uow_factory(), now=state.clock())


@_page
async def queue_page(request: web.Request, agent: Agent, csrf: str) -> web.StreamResponse:
    entries = await _run(_queue_data, request)
    return _html(pages.render_queue(entries, agent=agent.name, csrf=csrf))


@_page
async def queue_json(request: web.Request, agent: Agent, csrf: str) -> web.StreamResponse:
    entries = await _run(_queue_data, request)
    # `waiting_s` changes every second; the page computes it from `waiting_since`, and the ETag ignores it.
    stable = [{k: v for k, v in entry.items() if k != "waiting_s"} for entry in entries]
    return _etagged(request, {"tickets": stable})


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


async def _view(request: web.Request, ticket_id: int, *, refresh: bool = True) -> dict[str, Any]:
    """The ticket, its transcript refreshed from Rasa first (best effort, redacted, as the agent API does)."""
    state = agent_api.shared(request.app)
    conversation_id = await _run(services.conversation_of, state.uow_factory(), ticket_id)
    if refresh:
        await agent_api.refresh_transcript(state, ticket_id, conversation_id, caller="console")
    view: dict[str, Any] = await _run(services.ticket_view, state.uow_factory(), ticket_id)
    return view


def _not_found(agent: Agent, csrf: str, ticket_id: int) -> web.Response:
    return _html(
        pages.render_message("Not found", f"No ticket {ticket_id}.", agent=agent.name, csrf=csrf), 404
    )


@_page
async def ticket_page(request: web.Request, agent: Agent, csrf: str) -> web.StreamResponse:
    ticket_id = _ticket_id(request)
    try:
        view = await _view(request, ticket_id)
    except services.TicketNotFound:
        return _not_found(agent, csrf, ticket_id)
    notice = _NOTICES.get(request.query.get("done", ""), "")
    return _html(pages.render_ticket(view, agent=agent.name, csrf=csrf, notice=notice))


@_page
async def ticket_json(request: web.Request, agent: Agent, csrf: str) -> web.StreamResponse:
    ticket_id = _ticket_id(request)
    try:
        view = await _view(request, ticket_id)
    except services.TicketNotFound:
        return web.json_response({"error": {"code": "not_found", "message": "No such ticket."}}, status=404)
    view = {k: v for k, v in view.items() if k != "updated_at"}
    view["edits_phrase"] = pages.edits_phrase(view.get("edits_at_stake"))
    return _etagged(request, {"ticket": view})


@_page
async def confirm_removal(request: web.Request, agent: Agent, csrf: str) -> web.StreamResponse:
    ticket_id = _ticket_id(request)
    try:
        view = await _view(request, ticket_id, refresh=False)
    except services.TicketNotFound:
        return _not_found(agent, csrf, ticket_id)
    return _html(pages.render_confirm_removal(view, agent=agent.name, csrf=csrf))


# -- actions -------------------------------------------------------------------------------------------------

_NOTICES: Final = {
    "replied": "Your reply was sent to the user.",
    "resumed": "The bot answers the user again.",
    "approved": "Removal approved under your name; the user can now be walked through it.",
    "closed": "The ticket is closed.",
}


class _MovedOn(Exception):
    """The ticket changed under the agent (another agent closed it, or approved first)."""


def _last(view: dict[str, Any], action: str) -> str:
    for entry in reversed(view.get("history") or []):
        if entry.get("action") == action:
            return f"{entry.get('by')} at {entry.get('at')}"
    return "someone else"


async def _act(request: web.Request, agent: Agent, ticket_id: int, action: str) -> str:
    state = agent_api.shared(request.app)
    form: dict[str, str] = request["form"]
    if action == "reply":
        text = form.get("text", "")
        if not text.strip() or len(text) > agent_api.MAX_REPLY_CHARS:
            raise ValueError(f"A reply is 1 to {agent_api.MAX_REPLY_CHARS} characters.")
        await agent_api.reply_and_record(state, ticket_id, text, agent)
        return "replied"
    if action == "resume":
        conversation_id = await _run(services.ensure_open, state.uow_factory(), ticket_id)
        await agent_api.resume_and_record(state, ticket_id, conversation_id, agent)
        return "resumed"
    if action == "approve-removal":
        by, _ = await _run(
            services.approve_removal, state.uow_factory(), ticket_id, agent=agent.identity, now=state.clock()
        )
        if by != agent.identity:
            raise _MovedOn(f"Removal was already approved by {by}; your approval was not recorded.")
        return "approved"
    # close: resume first, as the agent API does, so a closed ticket never leaves the bot paused.
    conversation_id = await _run(services.ensure_open, state.uow_factory(), ticket_id)
    await agent_api.resume_and_record(state, ticket_id, conversation_id, agent)
    closed = await _run(
        services.close_ticket, state.uow_factory(), ticket_id, agent=agent.identity, now=state.clock()
    )
    if not closed:
        raise services.TicketClosed(f"ticket {ticket_id} is closed")
    await agent_api.ask_csat(state, conversation_id)  # CSAT (issue 16): the one rating question
    return "closed"


@_page
async def ticket_action(request: web.Request, agent: Agent, csrf: str) -> web.StreamResponse:
    ticket_id, action = _ticket_id(request), request.match_info["action"]
    if action not in ("reply", "resume", "approve-removal", "close"):
        raise web.HTTPNotFound()
    try:
        done = await _act(request, agent, ticket_id, action)
    except services.TicketNotFound:
        return _not_found(agent, csrf, ticket_id)
    except (services.TicketClosed, _MovedOn, ValueError, RasaUnavailable, UnaddressableConversation) as error:
        view = await _view(request, ticket_id, refresh=False)
        if isinstance(error, services.TicketClosed):
            message, status = (
                f"Ticket {ticket_id} was closed by {_last(view, 'close')}; nothing was done.",
                409,
            )
        elif isinstance(error, _MovedOn):
            message, status = str(error), 409
        elif isinstance(error, ValueError):
            message, status = str(error), 400
        elif isinstance(error, UnaddressableConversation):
            message, status = "This conversation cannot be reached through Rasa; nothing was sent.", 409
        else:
            logger.warning("console: %s", error)
            message, status = "The assistant could not be reached; nothing was sent.", 502
        return _html(pages.render_ticket(view, agent=agent.name, csrf=csrf, error=message), status)
    raise web.HTTPSeeOther(f"/agent/ticket/{ticket_id}?done={done}")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _STATIC_TYPES:
        raise web.HTTPNotFound()
    response = web.Response(body=(STATIC_DIR / name).read_bytes(), content_type=_STATIC_TYPES[name])
    return response


def register(app: web.Application, settings: Settings) -> None:
    """Add the console's routes (after `bot.web.agent.register`, whose state it shares)."""
    app[_CONSOLE] = _Console(settings)
    app.router.add_get("/agent", queue_page)
    app.router.add_get("/agent/sign-in", sign_in_page)
    app.router.add_post("/agent/sign-in", sign_in)
    app.router.add_post("/agent/sign-out", sign_out)
    app.router.add_get("/agent/set-password", set_password_page)
    app.router.add_post("/agent/set-password", set_password)
    app.router.add_get("/agent/queue.json", queue_json)
    app.router.add_get("/agent/ticket/{ticket_id}.json", ticket_json)
    app.router.add_get("/agent/ticket/{ticket_id}", ticket_page)
    app.router.add_get("/agent/ticket/{ticket_id}/approve-removal", confirm_removal)
    app.router.add_post("/agent/ticket/{ticket_id}/{action}", ticket_action)
    app.router.add_get("/agent/static/{name}", static)
