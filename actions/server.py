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
"""

from __future__ import annotations

import argparse
import asyncio
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

__all__ = ["create_app", "main"]

ACTIONS_PACKAGE = "actions"
logger = logging.getLogger(__name__)


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


def create_app(package: str = ACTIONS_PACKAGE) -> Sanic:
    """rasa_sdk's app for `package`, with metrics, health and log context added."""
    app = endpoint.create_app(package, cors_origins=None)
    km_metrics.known_actions(_registered_actions(package))
    database = None

    @app.middleware("request")
    async def start_call(request: Request) -> None:
        request.ctx.keymedic_started = time.perf_counter()
        # Each request is its own task, so these hold for this call only.
        REQUEST_ID.set(new_request_id(request.headers.get("X-Request-ID")))
        if request.path == "/webhook":
            call = _action_call(request)
            request.ctx.keymedic_action = call.get("next_action")
            sender = call.get("sender_id") or (call.get("tracker") or {}).get("sender_id")
            if isinstance(sender, str):
                CONVERSATION_ID.set(sender)

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
    app = create_app()
    # Like `rasa run actions`: SANIC_HOST decides the address (the launcher keeps it on 127.0.0.1).
    host = os.environ.get("SANIC_HOST", "0.0.0.0")
    logger.info("action server starting on %s:%d", host, args.port)
    app.run(host=host, port=args.port, workers=1, motd=False)


if __name__ == "__main__":
    main()
