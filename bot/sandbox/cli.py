"""`keymedic sandbox`: run the local exchange sandbox, or list its scenario keys.

Cheap to import: aiohttp and the exchange modules load inside `run`.
"""

from __future__ import annotations

import argparse

from bot.config import load_settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default SANDBOX_PORT, 8765); 0 picks one"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=None,
        help="seconds added to every answer (default KEYMEDIC_SANDBOX_LATENCY)",
    )
    parser.add_argument(
        "--slow-latency",
        type=float,
        default=None,
        help="extra seconds of the `slow` scenario keys (default KEYMEDIC_SANDBOX_SLOW_LATENCY, 3)",
    )
    parser.add_argument(
        "--history-size",
        type=int,
        default=None,
        help="history rows of each key that has history (default KEYMEDIC_SANDBOX_HISTORY_SIZE, 40)",
    )
    parser.add_argument(
        "--list", action="store_true", help="print the scenario keys and what each answers, then exit"
    )
    parser.add_argument(
        "--show",
        nargs=2,
        metavar=("EXCHANGE", "SCENARIO"),
        help="print one scenario's credentials as the JSON `keymedic diagnose` reads, then exit",
    )


def _print_table() -> None:
    from bot.sandbox.scenarios import VALID_FAMILY_SIZE, scenario_table

    rows = scenario_table()
    width = max(len(row.api_key) for row in rows)
    for row in rows:
        print(f"{row.exchange:<11} {row.scenario:<20} {row.api_key:<{width}}  {row.answer}")
    print(
        f"\nEvery exchange also knows valid-1 … valid-{VALID_FAMILY_SIZE}: keys of their own (own secret) "
        "that answer like valid, for many users at once (keymedic sandbox --show kraken valid-7)."
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit 0), or print the table with --list."""
    if args.list:
        _print_table()
        return 0
    if args.show:
        import json

        from bot.sandbox.scenarios import credentials_for

        try:
            print(json.dumps(credentials_for(*args.show)))
        except KeyError as error:
            print(f"keymedic sandbox: {error.args[0]}")
            return 2
        return 0
    import asyncio

    from bot.observability.logs import install_logging
    from bot.production import refuse_to_start
    from bot.sandbox.server import build_app, start

    # It accepts every scenario key it knows: a stand-in for the exchanges, never one of them.
    if refuse_to_start(
        load_settings(), "keymedic sandbox", ["the exchange sandbox is for local runs and tests"]
    ):
        return 1

    install_logging("sandbox")
    port = load_settings().sandbox_port if args.port is None else args.port

    async def serve() -> None:
        runner, bound = await start(
            build_app(args.latency, args.slow_latency, history_size=args.history_size), args.host, port
        )
        print(f"sandbox ready on http://{args.host}:{bound}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"keymedic sandbox: cannot listen on {args.host}:{port}: {error}", flush=True)
        return 1
    return 0
