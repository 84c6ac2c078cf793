"""`/metrics`, `/health/live`, `/health/ready` and request ids for an aiohttp app (the web app, the sandbox).

    register_aiohttp(app, process="web", database=lambda: database)

- `/metrics`: the process's families (`bot.observability.metrics.REGISTRY`) and, when a database is given,
  the background jobs' figures read from it (`bot.observability.jobfigures`); with a tracker store, the turn
  latencies read from its events (`bot.observability.turns`).
- `/health/live`: 200 while the loop serves. `/health/ready`: 200 when the database answers, else 503.
- Every request runs with a request id (the client's `X-Request-ID` when plain, else a new one), echoed in
  the response's `X-Request-ID` and carried by every log line written while it is handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from bot.observability import health
from bot.observability.logs import bind, new_request_id
from bot.observability.metrics import CONTENT_TYPE, REGISTRY, render
from bot.store.db import Database

__all__ = ["register_aiohttp", "request_ids", "LIVE_PATH", "READY_PATH", "METRICS_PATH"]

LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
METRICS_PATH: Final = "/metrics"

_JOBS_REGISTRY: Final[web.AppKey[CollectorRegistry | None]] = web.AppKey("jobs_registry")
_DATABASE: Final[web.AppKey[Callable[[], Database | None]]] = web.AppKey("observed_database")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id (and answer with it) for the duration of the request."""
    request_id = new_request_id(request.headers.get("X-Request-ID"))
    with bind(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers["X-Request-ID"] = request_id
            raise
    response.headers["X-Request-ID"] = request_id
    return response


async def _live(request: web.Request) -> web.Response:
    return web.json_response(health.live())


async def _ready(request: web.Request) -> web.Response:
    database = request.app[_DATABASE]()
    if database is None:
        return web.json_response({"status": "ok", "checks": {}})
    ok, answer = await asyncio.to_thread(health.ready, database)
    return web.json_response(answer, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    jobs = request.app[_JOBS_REGISTRY]
    # The job figures query the database: off the event loop.
    body = render(REGISTRY) + (await asyncio.to_thread(render, jobs) if jobs is not None else b"")
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def _tracker_engine(app: web.Application, url: str) -> Callable[[], Engine]:
    """A lazily built engine on the tracker store, disposed with the app. A SQLite store is opened read-only,
    so a web app started before Rasa never creates the file Rasa is about to create."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    engine: Engine | None = None

    def get() -> Engine:
        nonlocal engine
        if engine is None:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database:
                target = f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
                engine = create_engine(target, future=True)
            else:
                engine = create_engine(parsed, future=True, pool_pre_ping=True)
        return engine

    async def dispose(app: web.Application) -> AsyncIterator[None]:
        yield
        if engine is not None:
            engine.dispose()

    app.cleanup_ctx.append(dispose)
    return get


def register_aiohttp(
    app: web.Application,
    *,
    database: Callable[[], Database | None] | None = None,
    tracker_url: str | None = None,
    metrics: bool = True,
) -> None:
    """Add the routes and the request-id middleware to `app`, before it starts and before any catch-all
    route (aiohttp matches routes in the order they were added)."""
    from bot.observability.jobfigures import JobFiguresCollector
    from bot.observability.turns import TurnLatencyCollector

    # Outermost, so answers other middlewares build from exceptions carry the id too.
    app.middlewares.insert(0, request_ids)
    provider: Callable[[], Database | None] = database or (lambda: None)
    app[_DATABASE] = provider
    jobs: CollectorRegistry | None = None
    if database is not None:

        def required() -> Database:
            found = provider()
            if found is None:
                raise RuntimeError("no database")
            return found

        jobs = CollectorRegistry(auto_describe=False)
        jobs.register(JobFiguresCollector(required))
    if tracker_url is not None:
        jobs = jobs or CollectorRegistry(auto_describe=False)
        jobs.register(TurnLatencyCollector(_tracker_engine(app, tracker_url)))
    app[_JOBS_REGISTRY] = jobs
    app.router.add_get(LIVE_PATH, _live)
    app.router.add_get(READY_PATH, _ready)
    if metrics:
        app.router.add_get(METRICS_PATH, _metrics)
