"""The KeyMedic web app on aiohttp.web: the secure credential intake (DESIGN §5) and a health check.

    GET  /healthz              200 {"status": "ok"} while the process serves
    GET  /health/live, /health/ready, /metrics   liveness, readiness (database reachable), Prometheus
    GET  /intake/form#token=…  a page whose script posts the fragment's token (never sent, never logged)
    POST /intake/form          token=… : the credential form for the wallet the token is bound to (HTML)
    POST /intake/credentials   JSON or form-encoded; 201 {"status": "received", "reference": "pc_…", …}
                               or 4xx {"error": {"code", "message", "field"?}} (codes: `bot.intake.errors`)
    GET  /widget, /widget/…    the chat widget: demo page, script, stylesheet, demo sign-in
                               (`bot.web.widget.routes`, docs/widget.md)

A browser's form post (form-encoded, `Accept: text/html`) gets an HTML page instead of JSON. Every response
carries the security headers (`SECURITY_HEADERS`, a strict CSP, no caching, no referrer). Request bodies are
never logged: the access log records method, path (without the query, which holds the token), status and
time; the intake logs ids and error codes only.

The handlers only translate HTTP to `bot.intake` calls (its refusals to statuses: `bot.web.intake`);
database work runs in a thread, off the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Final, TypeVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from bot import intake
from bot.config import Settings
from bot.observability import web as observability
from bot.store.db import Database
from bot.store.model import utcnow
from bot.store.unit_of_work import AbstractUnitOfWork
from bot.web import agent, form, signin, slack_link, slack_support
from bot.web.console import routes as console
from bot.web.intake import InternalError, status_of
from bot.web.widget import routes as widget

__all__ = [
    "Identify",
    "UowFactory",
    "SECURITY_HEADERS",
    "token_bound_identity",
    "widget_identity",
    "build_app",
    "start",
    "AccessLogger",
]

logger = logging.getLogger(__name__)

# Who the request is verified to come from (DESIGN §6): the KeyMedic user id, or None when no JWT was sent
# (then only a token offered outside the widget, privately in Slack, vouches for its user: bot.intake.tokens).
# Raises `intake.NotSignedIn` when a JWT was sent and does not verify. Tests may pass their own.
Identify = Callable[[web.Request], Awaitable[int | None]]
UowFactory = Callable[[], AbstractUnitOfWork]
_T = TypeVar("_T")


async def token_bound_identity(request: web.Request) -> int | None:
    """Nobody is verified: the token alone vouches (kept for tests of the token rules themselves)."""
    return None


def widget_identity(settings: Settings, uow_factory: UowFactory) -> Identify:
    """The widget's JWT (`Authorization: Bearer`, `bot.web.signin`): its subject's user id. A subject with no
    KeyMedic user has no token either, so it is refused as another user; no demo fallback here (a browser
    without a token must not become the demo user)."""

    def user_id_of(handle: str) -> int:
        with (uow := uow_factory()):
            user = uow.users.by_handle(handle)
            user_id = user.id if user is not None else None
        if user_id is None:
            raise intake.WrongUser(
                "This form was opened for another user. Ask the assistant in the chat for your own link."
            )
        return user_id

    async def identify(request: web.Request) -> int | None:
        try:
            handle = signin.signed_in_handle(request, settings, demo=False)
        except signin.SignInRefused:
            raise intake.NotSignedIn("Your sign-in could not be verified. Sign in again and retry.") from None
        if handle is None:
            return None
        return await _in_thread(user_id_of, handle)

    return identify


SECURITY_HEADERS: Final[dict[str, str]] = {
    # JSON answers need nothing; the form pages replace this with `form.PAGE_CSP`.
    "Content-Security-Policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

_UOW: Final[web.AppKey[UowFactory]] = web.AppKey("uow_factory")
_IDENTIFY: Final[web.AppKey[Identify]] = web.AppKey("identify")
_CLOCK: Final[web.AppKey[Callable[[], datetime]]] = web.AppKey("clock")
_MAX_BODY: Final[web.AppKey[int]] = web.AppKey("max_body_bytes", int)
_DATABASE: Final[web.AppKey[Database]] = web.AppKey("database")


class AccessLogger(AbstractAccessLogger):
    """One line per request without the query string (it carries the form's token) or anything posted."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.1fms", request.remote, request.method, request.path, response.status, time * 1000
        )


def _json_error(error: intake.IntakeError) -> web.Response:
    return web.json_response({"error": error.to_dict()}, status=status_of(error))


_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


@web.middleware
async def _secure_responses(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The security headers on every response, and aiohttp's own refusals (unknown path, wrong method) in
    the same JSON shape as the intake's."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, f"http_{error.status}")
        response = web.json_response({"error": {"code": code, "message": error.reason}}, status=error.status)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _in_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    # SQLAlchemy here is synchronous (SQLite may wait up to its busy timeout): keep it off the event loop.
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(function, *args, **kwargs)
    )


def _html(page: str, status: int = 200) -> web.Response:
    response = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
    response.headers["Content-Security-Policy"] = form.PAGE_CSP
    return response


def _wants_html(request: web.Request) -> bool:
    """A browser posting the HTML form (as opposed to the widget's fetch, which sends JSON)."""
    media_type = request.content_type
    return media_type == "application/x-www-form-urlencoded" and "text/html" in request.headers.get(
        "Accept", ""
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def form_opener(request: web.Request) -> web.Response:
    """The page a form link opens: its script takes the token from the URL's fragment (never sent to any
    server, so no log holds it) and posts it here (`intake_form`). A `?token=` is not read: such a link has
    already left its token in whatever logged the URL."""
    response = web.Response(text=form.render_opener(), content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = form.OPENER_CSP
    return response


async def intake_form(request: web.Request) -> web.Response:
    """The credential form, for a usable token posted by the opener page; otherwise a page saying why the
    link cannot be used."""
    token: object = None
    if request.content_type == "application/x-www-form-urlencoded":
        token = (await request.post()).get("token")
    if not isinstance(token, str):
        token = ""
    now = request.app[_CLOCK]()
    try:
        if not token:
            raise intake.TokenUnknown(intake.UNKNOWN_TOKEN_MESSAGE)
        user_id = await request.app[_IDENTIFY](request)
        binding = await _in_thread(
            intake.inspect_intake_token, request.app[_UOW](), token, user_id=user_id, now=now
        )
    except intake.IntakeError as error:
        logger.info("intake form refused: %s", error.code)
        return _html(form.render_refused(error), status=status_of(error))
    return _html(form.render_form(binding, token))


async def _read_body(request: web.Request, max_bytes: int) -> bytes:
    # Refuse a declared oversize body before reading any of it; a chunked one stops at the limit.
    if request.content_length is not None and request.content_length > max_bytes:
        raise intake.PayloadTooLarge(f"The request is larger than {max_bytes} bytes; a key is much shorter.")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise intake.PayloadTooLarge(
            f"The request is larger than {max_bytes} bytes; a key is much shorter."
        ) from None


async def submit(request: web.Request) -> web.Response:
    """Store a credential posted by the form or the widget; answer with the opaque reference."""
    app = request.app
    html = _wants_html(request)
    token: object = None
    try:
        body = await _read_body(request, app[_MAX_BODY])
        fields = intake.parse_body(request.headers.get("Content-Type", ""), body, max_bytes=app[_MAX_BODY])
        token = fields.get("token")
        user_id = await app[_IDENTIFY](request)
        receipt = await _in_thread(
            intake.submit_credentials, app[_UOW](), token, user_id=user_id, fields=fields, now=app[_CLOCK]()
        )
    except intake.IntakeError as error:
        logger.info("intake submission refused: %s%s", error.code, f" ({error.field})" if error.field else "")
        if not html:
            return _json_error(error)
        return await _html_refusal(request, error, token)
    except Exception as error:
        # Only the type and the frames: an exception's message could quote what it failed on.
        logger.error(
            "intake submission failed: %s\n%s",
            type(error).__name__,
            "".join(traceback.format_tb(error.__traceback__)),
        )
        internal = InternalError("KeyMedic could not save the key just now; nothing was stored. Try again.")
        return _html(form.render_refused(internal), 500) if html else _json_error(internal)
    if html:
        return _html(form.render_received(receipt), status=201)
    return web.json_response(receipt.to_dict(), status=201)


async def _html_refusal(request: web.Request, error: intake.IntakeError, token: object) -> web.Response:
    """For a browser: the form again with the error when the token is still good, else why it is not."""
    if isinstance(error, intake.SubmissionInvalid) and isinstance(token, str):
        try:
            user_id = await request.app[_IDENTIFY](request)
            binding = await _in_thread(
                intake.inspect_intake_token,
                request.app[_UOW](),
                token,
                user_id=user_id,
                now=request.app[_CLOCK](),
            )
        except intake.IntakeError:
            pass
        else:
            return _html(form.render_form(binding, token, error=error), status=status_of(error))
    return _html(form.render_refused(error), status=status_of(error))


def _default_uow_factory(app: web.Application, settings: Settings) -> UowFactory:
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    database = create_database(settings.database_url)
    keys = load_key_ring(settings)

    async def database_lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        database.dispose()

    app.cleanup_ctx.append(database_lifetime)
    app[_DATABASE] = database  # for /health/ready and the job figures of /metrics
    return lambda: SqlAlchemyUnitOfWork(database, keys)


def build_app(
    settings: Settings,
    *,
    uow_factory: UowFactory | None = None,
    identify: Identify | None = None,
    clock: Callable[[], datetime] = utcnow,
    max_body_bytes: int = intake.MAX_BODY_BYTES,
) -> web.Application:
    """The web app. By default it uses the database and encryption keys of `settings` and the widget's JWT
    (`widget_identity`); tests pass a `uow_factory`, an `identify` and a `clock`."""
    # aiohttp refuses a body of `client_max_size` bytes or more; the intake accepts exactly `max_body_bytes`.
    app = web.Application(client_max_size=max_body_bytes + 1, middlewares=[_secure_responses])
    app[_UOW] = uow_factory or _default_uow_factory(app, settings)
    app[_IDENTIFY] = identify or widget_identity(settings, app[_UOW])
    app[_CLOCK] = clock
    app[_MAX_BODY] = max_body_bytes
    app.router.add_get("/healthz", healthz)
    # /metrics, /health/live, /health/ready (database reachable) and request ids (docs/operating.md).
    # Turn latencies come from the tracker store (bot/observability/turns.py); not with a test's fake store.
    tracker_url = None if uow_factory else settings.tracker_store_url
    observability.register_aiohttp(app, database=lambda: app.get(_DATABASE), tracker_url=tracker_url)
    app.router.add_get(intake.FORM_PATH, form_opener)
    app.router.add_post(intake.FORM_PATH, intake_form)
    app.router.add_post(intake.SUBMIT_PATH, submit)
    agent.register(app, settings, uow_factory=app[_UOW], clock=clock)
    console.register(app, settings)  # the agent console at /agent (issue 16), on the agent API's state
    slack_link.register(app, settings, uow_factory=app[_UOW], clock=clock)  # docs/slack.md
    slack_support.register(app, settings)  # the support channel (issue 16), on the agent API's state
    widget.register(app, settings)
    return app


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving `app`; the runner (for cleanup) and the port actually bound (port 0 picks one)."""
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=logging.getLogger("bot.web.access"))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)
