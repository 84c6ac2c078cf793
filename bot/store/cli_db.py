"""`keymedic db`: schema migrations of KeyMedic's database and of Rasa's tracker database (`keymedic db
upgrade`, `keymedic db current`; bot/store/migrate.py) and housekeeping
(`keymedic db purge-pending`: expired and rejected pending credentials, as the worker does every ten
minutes)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True)
    upgrade = sub.add_parser(
        "upgrade",
        help="migrate KeyMedic's database (to --revision) and the tracker database to the newest schema",
    )
    upgrade.add_argument("--revision", default="head", help="KeyMedic's database only")
    sub.add_parser("current", help="print the schema revision the database is at")
    sub.add_parser("purge-pending", help="delete expired and rejected pending credentials now")


def run(args: argparse.Namespace) -> int:
    from bot.store import migrate

    if args.db_command == "purge-pending":
        from bot.store.purge import run_purge_pending

        report = run_purge_pending()
        print(
            f"db: purged {report['expired']} expired and {report['rejected']} rejected pending credential(s)"
        )
        return 0
    if args.db_command == "upgrade":
        migrate.upgrade(revision=args.revision)
        migrate.upgrade_tracker()
        print(f"db: schema at {migrate.current_revision()}, tracker at {migrate.tracker_revision()}")
        return 0
    print(migrate.current_revision() or "(empty)")
    print(f"tracker: {migrate.tracker_revision() or '(empty)'}")
    return 0
