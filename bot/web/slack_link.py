"""Linking a Slack account to a KeyMedic user: the web app's half of the one-time link (docs/slack.md).

An unlinked Slack user gets, privately in Slack, a link with a one-time token (`sl_…`, 15 minutes,
`bot.store.slack.issue_link_token`). Whoever confirms it while signed in becomes that Slack user's KeyMedic
account:

    GET  /slack/link?token=sl_…   a page saying which Slack user would be linked, with a confirm button
    POST /slack/link              {"token"} (JSON or form); the signed-in user is
                                  - the host app's user: `Authorization: Bearer <widget JWT>` (HS256 with
                                    KEYMEDIC_WIDGET_JWT_SECRET, the same token the widget uses), or
                                  - `demo`, only where the widget's demo sign-in is on (local, loopback)
                                  201 {"status": "linked"} | 4xx {"error": {"code", "message"}}

Production points `KEYMEDIC_SLACK_LINK_URL` at a page of the host app, which signs the user in and posts the
token here with its JWT. Codes: `not_signed_in` 401, `token_unknown` 404, `token_used` 409,
`token_expired` 410, `already_linked` 409 (that Slack user belongs to another account: support unlinks),
`malformed_body` 400.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Final

import jwt
from aiohttp import web

from bot.config import Settings
from bot.store import services
from bot.store.slack import LinkRefused, pending_link, redeem_link_token
from bot.store.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork
from bot.web.widget.demo import DEMO_USER, demo_signin_enabled

__all__ = ["LINK_PATH", "register"]

logger = logging.getLogger(__name__)

LINK_PATH: Final = "/slack/link"
_PAGE_CSP: Final = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
_HANDLE: Final = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")
_MAX_BODY: Final = 4096
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

_STATE: Final[web.AppKey[tuple[Settings, Callable[[], AbstractUnitOfWork], Callable[[], datetime]]]] = (
    web.AppKey("slack_link")
)


def _signed_in(request: web.Request, settings: Settings) -> str | None:
    """The KeyMedic handle of whoever is signed in: the host app's JWT, or the local run's demo sign-in."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer ") and len(settings.widget_jwt_secret.encode()) >= 32:
        try:
            claims = jwt.decode(
                header[len("bearer ") :].strip(),
                settings.widget_jwt_secret,
                algorithms=["HS256"],
                audience=settings.widget_jwt_audience,
                leeway=30,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.InvalidTokenError:
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) and _HANDLE.fullmatch(sub) else None
    if demo_signin_enabled(settings):
        return DEMO_USER
    return None


def _page(title: str, body: str, status: int = 200) -> web.Response:
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
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


async def link_page(request: web.Request) -> web.Response:
    settings, uow_factory, clock = request.app[_STATE]
    token = request.query.get("token", "")

    def look() -> str:
        uow = uow_factory()
        assert isinstance(uow, SqlAlchemyUnitOfWork)
        with uow:
            return pending_link(uow, token, now=clock()).slack_identity

    try:
        identity = await asyncio.to_thread(look)
    except LinkRefused as refused:
        return _refusal(refused.code, True)
    team, _, user = identity.partition(":")
    who = _signed_in(request, settings)
    if who is None:
        action = (
            "<p>Open this link from your account page, signed in to KeyMedic, to confirm.</p>"
            if not settings.slack_link_url
            else "<p>Sign in to confirm.</p>"
        )
    else:
        action = (
            f'<form method=post action="{LINK_PATH}">'
            f'<input type=hidden name=token value="{html.escape(token)}">'
            f"<button type=submit>Link it to {html.escape(who)}</button></form>"
        )
    body = (
        f"<p>Slack user <code>{html.escape(user)}</code> in workspace <code>{html.escape(team)}</code> "
        "asked to "
        "be linked to a KeyMedic account. Whoever is linked can ask KeyMedic about that account's wallets "
        "from Slack.</p><p><strong>Only confirm a link you asked for yourself in Slack.</strong></p>" + action
    )
    return _page("Link your Slack account", body)


async def confirm(request: web.Request) -> web.Response:
    settings, uow_factory, clock = request.app[_STATE]
    as_html = request.content_type == "application/x-www-form-urlencoded"
    if request.content_length is not None and request.content_length > _MAX_BODY:
        return _refusal("malformed_body", as_html)
    try:
        if as_html:
            token = (await request.post()).get("token")
        else:
            body = json.loads(await request.read() or b"null")
            token = body.get("token") if isinstance(body, dict) else None
    except (ValueError, UnicodeDecodeError):
        return _refusal("malformed_body", as_html)
    if not isinstance(token, str):
        return _refusal("malformed_body", as_html)
    who = _signed_in(request, settings)
    if who is None:
        return _refusal("not_signed_in", as_html)

    def link() -> str:
        uow = uow_factory()
        assert isinstance(uow, SqlAlchemyUnitOfWork)
        with uow:
            user = services.ensure_user(uow, who)
            identity = redeem_link_token(uow, token, user, now=clock())
            uow.commit()
            return identity

    try:
        identity = await asyncio.to_thread(link)
    except LinkRefused as refused:
        logger.info("slack link refused: %s", refused.code)
        return _refusal(refused.code, as_html)
    logger.info("slack user linked to a KeyMedic user")
    if as_html:
        return _page("Slack account linked", "<p>Done. Go back to Slack and message KeyMedic again.</p>", 201)
    return web.json_response({"status": "linked", "slack_user": identity, "user": who}, status=201)


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
    app.router.add_post(LINK_PATH, confirm)
