"""`keymedic db`: schema migrations (`keymedic db upgrade`, `keymedic db current`)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True)
    upgrade = sub.add_parser("upgrade", help="migrate the database to the newest schema (or --revision)")
    upgrade.add_argument("--revision", default="head")
    sub.add_parser("current", help="print the schema revision the database is at")


def run(args: argparse.Namespace) -> int:
    from bot.store import migrate

    if args.db_command == "upgrade":
        migrate.upgrade(revision=args.revision)
        print(f"db: schema at {migrate.current_revision()}")
        return 0
    print(migrate.current_revision() or "(empty)")
    return 0
