"""The widget's routes in the web app (docs/widget.md).

    GET  /widget                            a demo host page with the widget on it (the demo user, local runs)
    GET  /widget/keymedic-widget.js         the embeddable script (widget/src/)
    GET  /widget/keymedic-widget.css        its stylesheet
    GET  /widget/vendor/socket.io.min.js    socket.io-client's browser build (widget/node_modules, `npm ci`)
    POST /widget/demo-token                 200 {"token", "expires_in_s", "user"}: a JWT for `demo`,
                                            only while the demo sign-in is on; else 404

The script and stylesheet may be embedded by a host app on another origin, so they are served with
`Cross-Origin-Resource-Policy: cross-origin`; everything else keeps the web app's strict headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import PROJECT_ROOT, Settings
from bot.web.widget.demo import DEMO_TOKEN_TTL_S, DEMO_USER, demo_signin_enabled, mint_demo_token

__all__ = ["WIDGET_DIR", "ASSETS", "PAGE_PATH", "DEMO_TOKEN_PATH", "page_csp", "render_page", "register"]

WIDGET_DIR: Final = PROJECT_ROOT / "widget"
PAGE_PATH: Final = "/widget"
DEMO_TOKEN_PATH: Final = "/widget/demo-token"
# URL path under /widget/ → (file under WIDGET_DIR, media type). A fixed table: no path from the request
# ever reaches the file system.
ASSETS: Final[dict[str, tuple[str, str]]] = {
    "keymedic-widget.js": ("src/keymedic-widget.js", "text/javascript"),
    "keymedic-widget.css": ("src/keymedic-widget.css", "text/css"),
    "vendor/socket.io.min.js": ("node_modules/socket.io-client/dist/socket.io.min.js", "text/javascript"),
}

_SETTINGS: Final[web.AppKey[Settings]] = web.AppKey("widget_settings", Settings)
_DIR: Final[web.AppKey[Path]] = web.AppKey("widget_dir", Path)
_CLOCK: Final[web.AppKey[Callable[[], float]]] = web.AppKey("widget_clock")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_csp(settings: Settings) -> str:
    """The demo page may run its own scripts and talk to Rasa's socket (polling and websocket) and to the
    intake (the credential form posts there); nothing else, and it is never framed."""
    socket = _origin(settings.widget_socket_base_url)
    websocket = socket.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    intake = _origin(settings.web_base_url)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        f"connect-src 'self' {intake} {socket} {websocket}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def render_page(settings: Settings) -> str:
    """The demo host page: a stand-in for the host app, signed in as the demo user."""
    if demo_signin_enabled(settings):
        mount = (
            f'<div id="keymedic-chat" data-keymedic-widget data-socket-url="'
            f'{escape(settings.widget_socket_base_url)}" data-token-url="{DEMO_TOKEN_PATH}"></div>\n'
        )
        intro = (
            f"<p>This page stands in for the crypto-tax app. You are signed in as the demo user "
            f"<code>{DEMO_USER}</code>: the page fetches a short-lived token from <code>{DEMO_TOKEN_PATH}"
            "</code>, as a host app would mint one for its signed-in user.</p>\n"
            "<p>Try <q>my kraken wallet says invalid api key</q>, and enter a sandbox key "
            "(<code>keymedic sandbox --show kraken valid</code>) in the form that appears.</p>\n"
        )
    else:
        mount = ""
        intro = (
            '<p role="alert">The demo sign-in is off in this configuration. Embed '
            "<code>/widget/keymedic-widget.js</code> in your app and give it your user's token "
            "(docs/widget.md).</p>\n"
        )
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        "<title>KeyMedic chat (demo)</title>\n"
        # No favicon request (it would only 404).
        '<link rel="icon" href="data:,">\n'
        '<link rel="stylesheet" href="/widget/keymedic-widget.css">\n'
        '</head>\n<body class="km-demo-page">\n<main>\n<h1>KeyMedic chat (demo)</h1>\n'
        f"{intro}{mount}</main>\n"
        '<script src="/widget/vendor/socket.io.min.js"></script>\n'
        '<script src="/widget/keymedic-widget.js"></script>\n'
        "</body>\n</html>\n"
    )


async def widget_page(request: web.Request) -> web.Response:
    settings = request.app[_SETTINGS]
    response = web.Response(text=render_page(settings), content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = page_csp(settings)
    return response


async def widget_asset(request: web.Request) -> web.Response:
    entry = ASSETS.get(request.match_info["asset"])
    if entry is None:
        raise web.HTTPNotFound()
    relative, media_type = entry
    path = request.app[_DIR] / relative
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        # socket.io-client comes from npm; a tree where `make setup` never ran `npm ci` lacks it.
        return web.json_response(
            {"error": {"code": "widget_not_built", "message": "Run `make setup` (npm ci in widget/)."}},
            status=503,
        )
    response = web.Response(body=body, content_type=media_type, charset="utf-8")
    # A host app on another origin embeds these files with <script>/<link>.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


async def demo_token(request: web.Request) -> web.Response:
    settings = request.app[_SETTINGS]
    if not demo_signin_enabled(settings):
        return web.json_response(
            {"error": {"code": "demo_signin_disabled", "message": "The demo sign-in is off here."}},
            status=404,
        )
    token = mint_demo_token(settings, now=request.app[_CLOCK]())
    return web.json_response({"token": token, "expires_in_s": DEMO_TOKEN_TTL_S, "user": DEMO_USER})


def register(
    app: web.Application,
    settings: Settings,
    *,
    widget_dir: Path = WIDGET_DIR,
    clock: Callable[[], float] | None = None,
) -> None:
    """Add the widget's routes to the web app; tests pass their own `widget_dir` and `clock`."""
    app[_SETTINGS] = settings
    app[_DIR] = widget_dir
    app[_CLOCK] = clock or time.time
    app.router.add_get(PAGE_PATH, widget_page)
    app.router.add_post(DEMO_TOKEN_PATH, demo_token)
    app.router.add_get("/widget/{asset:.+}", widget_asset)
