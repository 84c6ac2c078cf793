"""Linking a Slack account to a KeyMedic user: the web app's half (docs/slack.md "Linking").

A link proves both ends (issue 15). An unlinked Slack user gets, privately in Slack, a link with a one-time
token (`sl_…`, 15 minutes, `bot.store.slack.issue_link_token`). Whoever opens it signed in is shown a short
code bound to that Slack user and to themselves; the link is made only when that Slack user sends the code to
the bot in Slack (`channels.slack`). A stranger who forwards their link to a victim never sees the code; a
stranger who opens a victim's link gets a code the victim's Slack account never sends.

    GET  /slack/link?token=sl_…   which Slack user asked, and (signed in) a button for the code
    POST /slack/link              {"token"} (JSON or form): 201 {"status": "code_issued", "code",
                                  "slack_user", "user", "expires_in_s"}; a browser gets a page with the code
    GET  /slack/links             the signed-in user's Slack links: {"links": [{"slack_user", "linked_at"}]}
    POST /slack/unlink            {"slack_user"?} (JSON only): removes that link, or all of them;
                                  200 {"status": "unlinked", "removed": [...]}

Signed in (`bot.web.signin`): the host app's user (`Authorization: Bearer <widget JWT>`), or `demo` where the
widget's demo sign-in is on (local, loopback). Refusals are {"error": {"code", "message"}}: `not_signed_in`
401, `token_unknown` 404, `token_used` 409, `token_expired` 410, `already_linked` 409 (that Slack user is
another account's: support unlinks), `malformed_body` 400.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from bot.config import Settings
from bot.store import services
from bot.store.slack import (
    LINK_CODE_TTL,
    LinkRefused,
    issue_link_code,
    pending_link,
    slack_links,
    unlink,
)
from bot.store.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork
from bot.web.signin import SignInRefused, signed_in_handle

__all__ = ["LINK_PATH", "LINKS_PATH", "UNLINK_PATH", "register"]

logger = logging.getLogger(__name__)

LINK_PATH: Final = "/slack/link"
LINKS_PATH: Final = "/slack/links"
UNLINK_PATH: Final = "/slack/unlink"
_PAGE_CSP: Final = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
_MAX_BODY: Final = 4096
_MINUTES: Final = int(LINK_CODE_TTL.total_seconds() // 60)
_MESSAGES: Final = {
    "not_signed_in": (401, "Sign in to KeyMedic first, then open the link from Slack again."),
    "token_unknown": (404, "This link is not one KeyMedic made. Message KeyMedic in Slack for a new one."),
    "token_used": (409, "This link was used already. Message KeyMedic in Slack for a new one if needed."),
    "token_expired": (
        410,
        "This link has expired (links work for 15 minutes). Message KeyMedic in Slack again.",
    ),
    "already_linked": (409, "That Slack account is linked to another KeyMedic account. Contact support."),
    "malformed_body": (400, 'Send the link\'s token as JSON {"token": …} or as a form field.'),
}

_State = tuple[Settings, Callable[[], AbstractUnitOfWork], Callable[[], datetime]]
_STATE: Final[web.AppKey[_State]] = web.AppKey("slack_link")


def _who(request: web.Request, settings: Settings) -> str | None:
    try:
        return signed_in_handle(request, settings)
    except SignInRefused:
        return None


def _page(title: str, body: str, status: int = 200) -> web.Response:
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)} · KeyMedic</title>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></html>"
    )
    response = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
    response.headers["Content-Security-Policy"] = _PAGE_CSP
    return response


def _refusal(code: str, as_html: bool) -> web.Response:
    status, message = _MESSAGES[code]
    if as_html:
        return _page("Slack link not confirmed", f'<p role="alert">{html.escape(message)}</p>', status)
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _uow(request: web.Request) -> SqlAlchemyUnitOfWork:
    uow = request.app[_STATE][1]()
    assert isinstance(uow, SqlAlchemyUnitOfWork)
    return uow


async def _fields(request: web.Request, as_html: bool) -> dict[str, Any] | None:
    """The posted fields (form or JSON object), or None when the body cannot be read."""
    if request.content_length is not None and request.content_length > _MAX_BODY:
        return None
    try:
        if as_html:
            return dict(await request.post())
        if request.content_type != "application/json":
            # Not text/plain: a page elsewhere can post that cross-site without asking (CORS "simple").
            return None
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def link_page(request: web.Request) -> web.Response:
    settings, _, clock = request.app[_STATE]
    token = request.query.get("token", "")

    def look() -> str:
        with (uow := _uow(request)):
            return pending_link(uow, token, now=clock()).slack_identity

    try:
        identity = await asyncio.to_thread(look)
    except LinkRefused as refused:
        return _refusal(refused.code, True)
    team, _, user = identity.partition(":")
    who = _who(request, settings)
    if who is None:
        action = (
            "<p>Open this link from your account page, signed in to KeyMedic, to continue.</p>"
            if not settings.slack_link_url
            else "<p>Sign in to continue.</p>"
        )
    else:
        action = (
            f'<form method=post action="{LINK_PATH}">'
            f'<input type=hidden name=token value="{html.escape(token)}">'
            f"<button type=submit>Show my code to link it to {html.escape(who)}</button></form>"
        )
    body = (
        f"<p>Slack user <code>{html.escape(user)}</code> in workspace <code>{html.escape(team)}</code> "
        "asked to be linked to a KeyMedic account. Whoever is linked can act on that account's wallets from "
        "Slack: ask about them, update their keys, talk to support.</p>"
        "<p>Next you get a code to send to KeyMedic from that Slack account, in its direct message with "
        "KeyMedic. <strong>Continue only if you asked for this link yourself in Slack.</strong></p>" + action
    )
    return _page("Link your Slack account", body)


async def issue_code(request: web.Request) -> web.Response:
    settings, _, clock = request.app[_STATE]
    as_html = request.content_type == "application/x-www-form-urlencoded"
    fields = await _fields(request, as_html)
    token = fields.get("token") if fields is not None else None
    if not isinstance(token, str):
        return _refusal("malformed_body", as_html)
    who = _who(request, settings)
    if who is None:
        return _refusal("not_signed_in", as_html)
    handle: str = who

    def issue() -> tuple[str, str]:
        with (uow := _uow(request)):
            user = services.ensure_user(uow, handle)
            identity = pending_link(uow, token, now=clock()).slack_identity
            code = issue_link_code(uow, token, user, now=clock())
            uow.commit()
            return identity, code

    try:
        identity, code = await asyncio.to_thread(issue)
    except LinkRefused as refused:
        logger.info("slack link refused: %s", refused.code)
        return _refusal(refused.code, as_html)
    logger.info("slack link code issued")
    if as_html:
        body = (
            "<p>Send this code to KeyMedic <strong>from the Slack account that asked</strong>, in your "
            f"direct message with KeyMedic, within {_MINUTES} minutes:</p>"
            f"<p><kbd>{html.escape(code)}</kbd></p>"
            "<p>It works once, only from that Slack account. Never give it to anyone: whoever sends it from "
            "their Slack account would act on your KeyMedic account.</p>"
        )
        return _page("Your Slack link code", body, 201)
    return web.json_response(
        {
            "status": "code_issued",
            "code": code,
            "slack_user": identity,
            "user": handle,
            "expires_in_s": int(LINK_CODE_TTL.total_seconds()),
        },
        status=201,
    )


async def list_links(request: web.Request) -> web.Response:
    settings = request.app[_STATE][0]
    who = _who(request, settings)
    if who is None:
        return _refusal("not_signed_in", False)
    handle: str = who

    def read() -> list[tuple[str, datetime]]:
        with (uow := _uow(request)):
            user = uow.users.by_handle(handle)
            return slack_links(uow, user) if user is not None else []

    links = await asyncio.to_thread(read)
    return web.json_response(
        {"links": [{"slack_user": found, "linked_at": at.isoformat()} for found, at in links]}
    )


async def remove_link(request: web.Request) -> web.Response:
    settings = request.app[_STATE][0]
    # JSON only: another site's page cannot send it without a CORS preflight, so it cannot unlink anyone.
    as_html = False
    fields = await _fields(request, as_html)
    chosen = fields.get("slack_user") if fields is not None else None
    if fields is None or (chosen is not None and not isinstance(chosen, str)):
        return _refusal("malformed_body", as_html)
    who = _who(request, settings)
    if who is None:
        return _refusal("not_signed_in", as_html)
    handle: str = who

    def remove() -> list[str]:
        with (uow := _uow(request)):
            user = uow.users.by_handle(handle)
            removed = unlink(uow, user, chosen or None) if user is not None else []
            uow.commit()
            return removed

    removed = await asyncio.to_thread(remove)
    logger.info("slack links removed: %d", len(removed))
    return web.json_response({"status": "unlinked", "removed": removed})


def register(
    app: web.Application,
    settings: Settings,
    *,
    uow_factory: Callable[[], AbstractUnitOfWork],
    clock: Callable[[], datetime],
) -> None:
    """Add the Slack link routes to the web app (`bot.web.app.build_app` calls this)."""
    app[_STATE] = (settings, uow_factory, clock)
    app.router.add_get(LINK_PATH, link_page)
    app.router.add_post(LINK_PATH, issue_code)
    app.router.add_get(LINKS_PATH, list_links)
    app.router.add_post(UNLINK_PATH, remove_link)
