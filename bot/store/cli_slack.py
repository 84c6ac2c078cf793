"""`keymedic slack`: support's view of Slack links (`links --user H`, `unlink --user H [--slack-user T:U]`).

The user's own way is the web app (`GET /slack/links`, `POST /slack/unlink`, docs/slack.md); this is for
support, e.g. when a user reports a link they did not make or a Slack user is `already_linked` elsewhere.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slack_command", required=True)
    links = sub.add_parser("links", help="list the Slack users linked to a KeyMedic user")
    links.add_argument("--user", required=True, help="the KeyMedic handle")
    unlink = sub.add_parser("unlink", help="remove a KeyMedic user's Slack links")
    unlink.add_argument("--user", required=True, help="the KeyMedic handle")
    unlink.add_argument(
        "--slack-user", default=None, help="only this one, <team id>:<user id> (default: all)"
    )


def run(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from bot.store import slack
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = load_settings()
    database = create_database(settings.database_url)
    try:
        uow = SqlAlchemyUnitOfWork(database, load_key_ring(settings))
        with uow:
            user = uow.users.by_handle(args.user)
            if user is None:
                print(f"slack: no KeyMedic user {args.user!r}")
                return 1
            if args.slack_command == "links":
                for identity, linked_at in slack.slack_links(uow, user):
                    print(f"{identity}\tlinked {linked_at.isoformat()}")
                return 0
            removed = slack.unlink(uow, user, args.slack_user)
            uow.commit()
        print(f"slack: removed {len(removed)} link(s){': ' + ', '.join(removed) if removed else ''}")
        return 0
    finally:
        database.dispose()
