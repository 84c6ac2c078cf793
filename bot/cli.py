"""`keymedic` command line. Each subcommand lives in the module that owns its job; this file only routes.

Only the module of the subcommand being run is imported (`keymedic --help` imports none), so a subcommand
module may import what it needs at its top. `_build_parser()` without a command imports them all (tests use
it to check that importing a module connects nowhere).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

# name -> (module, help). Each module exposes `add_arguments(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.launcher", "start the whole assistant on local defaults"),
    "sandbox": ("bot.sandbox.cli", "run the local exchange sandbox"),
    "diagnose": ("bot.diagnosis.cli", "test an exchange API key (JSON on stdin)"),
    "train": ("bot.training", "train the Rasa model when its inputs changed"),
    "db": ("bot.store.cli_db", "database schema migrations (db upgrade, db current)"),
    "agent": ("bot.store.cli_agent", "support agents of the agent API (agent add, rotate, disable, list)"),
    "seed-demo": ("bot.demo", "load the demo user and wallets into an empty database"),
    "rotate-keys": ("bot.store.cli_rotate", "re-encrypt stored credentials with the current key"),
    "slack": ("bot.store.cli_slack", "list or remove a user's Slack links (slack links, slack unlink)"),
    "worker": ("bot.jobs", "run the background job consumer (resyncs)"),
    "web": ("bot.web.cli", "run the web app (secure credential intake)"),
    "sync": ("bot.sync.cli", "resync one wallet now, with progress"),
    "report": ("bot.report.cli", "write the support analytics report (HTML)"),
    "cluster": ("bot.cluster.cli", "start several Rasa replicas behind HAProxy (PostgreSQL, Redis)"),
}


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's module is imported (the others are listed by name)."""
    parser = argparse.ArgumentParser(prog="keymedic", description="KeyMedic: fix a broken exchange API key.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
            run: Callable[[argparse.Namespace], int] = module.run
            command.set_defaults(handler=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The subcommand is the first word that is not an option (keymedic takes no options of its own but -h).
    chosen = next((a for a in arguments if not a.startswith("-")), None)
    # No known subcommand ("" imports none): argparse prints the help or the error from the names alone.
    args = _build_parser(chosen if chosen in SUBCOMMANDS else "").parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
