"""`keymedic web`: run the KeyMedic web app (secure credential intake).

Cheap to import: aiohttp, SQLAlchemy and the app load inside `run`. Prints one line, `web ready on
http://HOST:PORT`, once it accepts connections; SIGINT or SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The web app's options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default WEB_PORT, 8080); 0 picks one")


def _schema_problem(database_url: str) -> str | None:
    """Why the database cannot serve the intake yet (not migrated to the newest revision), or None."""
    from alembic.script import ScriptDirectory

    from bot.store.migrate import alembic_config, current_revision

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = current_revision(database_url)
    if current != head:
        return f"the database schema is at {current or 'nothing'}, not {head}; run `keymedic db upgrade`"
    return None


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (exit 0); exit 1 when it cannot start."""
    import asyncio
    import signal

    from bot.config import load_settings
    from bot.observability.logs import install_logging
    from bot.production import refuse_to_start
    from bot.web.app import build_app, start

    install_logging("web")  # JSON lines, secrets scrubbed (docs/operating.md)
    settings = load_settings()
    if refuse_to_start(settings, "keymedic web"):
        return 1
    port = settings.web_port if args.port is None else args.port
    try:
        problem = _schema_problem(settings.database_url)
    except Exception as error:  # an unreachable database; the URL may hold a password, so not quoted
        problem = f"cannot read the database schema ({type(error).__name__})"
    if problem is not None:
        print(f"keymedic web: {problem}", flush=True)
        return 1

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        runner, bound = await start(build_app(settings), args.host, port)
        print(f"web ready on http://{args.host}:{bound}", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except OSError as error:
        print(f"keymedic web: cannot listen on {args.host}:{port}: {error}", flush=True)
        return 1
    return 0
