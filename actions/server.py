"""The action server's entrypoint: rasa_sdk's own Sanic app, plus what operating it needs.

    python -m actions.server --port 5055        (bot/launcher.py starts it so)

On top of rasa_sdk's `/webhook`, `/actions` and `/health`:

- `GET /metrics`: the action server's Prometheus families (`bot.observability.metrics`): action latency by
  action, diagnoses by exchange/item/outcome, exchange errors by kind, tickets opened.
- `GET /health/live`: 200 while the loop serves. `GET /health/ready`: 200 when the KeyMedic database answers
  (actions need it for every conversation; they never load the model, so readiness does not wait for it).
- Action latency is measured around each `/webhook` call here, for every action alike, so no action (and no
  base class) has to remember to time itself. The action label is the called action's name only when it is
  one this server registered; anything else counts as `other`.
- Every call runs with the conversation id (the call's `sender_id`) and a request id bound for the logs,
  which are JSON lines with secrets scrubbed (`bot.observability.logs`).
- `/webhook` and `/actions` answer only Rasa: its calls carry `Authorization: Bearer <KEYMEDIC_ACTIONS_TOKEN>`
  (endpoints.yml's action endpoint `headers`); anything else gets 401 before its body is read. The action
  server takes the user's identity from the tracker it is sent, so whoever could call it could act as any
  user (list their wallets, mint their intake tokens). A header rather than Rasa's `token` query parameter:
  query strings end up in access logs. Without a token the server does not start; it binds 127.0.0.1 unless
  SANIC_HOST says otherwise (deployments set 0.0.0.0 explicitly).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import time
import zlib
from typing import Any

from rasa_sdk import endpoint
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.config import load_settings
from bot.observability import health
from bot.observability import metrics as km_metrics
from bot.observability.logs import CONVERSATION_ID, REQUEST_ID, install_logging, new_request_id
from bot.production import refuse_to_start

__all__ = ["create_app", "main"]

ACTIONS_PACKAGE = "actions"
# rasa_sdk's routes that run actions or describe them; /health and the routes below stay open for probes.
GUARDED_PATHS = frozenset({"/webhook", "/actions"})
logger = logging.getLogger(__name__)


def _authorized(request: Request, token: bytes) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`; never with an empty token."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken says nothing about how much of the token matched.
    return (
        bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token)
    )


def _action_call(request: Request) -> dict[str, Any]:
    """The action call's JSON, as rasa_sdk reads it (Rasa may deflate it); {} when it is not JSON."""
    try:
        raw = request.body
        if request.headers.get("Content-Encoding") == "deflate":
            raw = zlib.decompress(raw)
        call = json.loads(raw)
    except (ValueError, zlib.error):
        return {}
    return call if isinstance(call, dict) else {}


def _registered_actions(package: str) -> set[str]:
    executor = ActionExecutor()
    executor.register_package(package)
    return set(executor.actions)


def create_app(package: str = ACTIONS_PACKAGE, *, token: str | None = None) -> Sanic:
    """rasa_sdk's app for `package`, with Rasa's token required, metrics, health and log context added.

    `token` defaults to `KEYMEDIC_ACTIONS_TOKEN`; an empty one refuses every action call.
    """
    expected = (load_settings().actions_token if token is None else token).encode()
    app = endpoint.create_app(package, cors_origins=None)
    km_metrics.known_actions(_registered_actions(package))
    database = None

    @app.middleware("request")
    async def start_call(request: Request) -> HTTPResponse | None:
        request.ctx.keymedic_started = time.perf_counter()
        # Each request is its own task, so these hold for this call only.
        REQUEST_ID.set(new_request_id(request.headers.get("X-Request-ID")))
        if request.path in GUARDED_PATHS and not _authorized(request, expected):
            logger.warning("action call refused: no valid token (path %s)", request.path)
            return response.json({"error": "unauthorized"}, status=401)
        if request.path == "/webhook":
            call = _action_call(request)
            request.ctx.keymedic_action = call.get("next_action")
            sender = call.get("sender_id") or (call.get("tracker") or {}).get("sender_id")
            if isinstance(sender, str):
                CONVERSATION_ID.set(sender)
        return None

    @app.middleware("response")
    async def end_call(request: Request, answer: HTTPResponse) -> None:
        if request.path == "/webhook" and hasattr(request.ctx, "keymedic_started"):
            km_metrics.observe_action(
                str(getattr(request.ctx, "keymedic_action", "")),
                time.perf_counter() - request.ctx.keymedic_started,
                failed=answer.status >= 400,
            )
        request_id = REQUEST_ID.get()
        if request_id:
            answer.headers["X-Request-ID"] = request_id

    @app.get("/metrics")
    async def metrics(_: Request) -> HTTPResponse:
        return response.raw(km_metrics.render(), content_type=km_metrics.CONTENT_TYPE)

    @app.get("/health/live")
    async def live(_: Request) -> HTTPResponse:
        return response.json(health.live())

    @app.get("/health/ready")
    async def ready(_: Request) -> HTTPResponse:
        nonlocal database
        if database is None:
            from bot.store.db import create_database

            database = create_database(load_settings().database_url)
        ok, answer = await asyncio.to_thread(health.ready, database)
        return response.json(answer, status=200 if ok else 503)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the actions until stopped."""
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=load_settings().actions_port)
    parser.add_argument(
        "--debug", action="store_true", help="log at debug level (as `rasa run actions --debug`)"
    )
    args = parser.parse_args(argv)
    install_logging("actions", level="debug" if args.debug else None)
    settings = load_settings()
    if refuse_to_start(settings, "action server"):
        raise SystemExit(1)
    if not settings.actions_token:
        raise SystemExit("action server: KEYMEDIC_ACTIONS_TOKEN is not set; it answers Rasa only")
    app = create_app(token=settings.actions_token)
    # Like `rasa run actions`, SANIC_HOST decides the address, but it defaults to this machine only: the
    # server acts for whichever user a call names, so reaching it from elsewhere must be a decision.
    host = os.environ.get("SANIC_HOST", "127.0.0.1")
    logger.info("action server starting on %s:%d", host, args.port)
    app.run(host=host, port=args.port, workers=1, motd=False)


if __name__ == "__main__":
    main()
