"""`keymedic report`: the support analytics report as one self-contained HTML file.

    keymedic report --since 2026-11-01 --until 2026-12-01 --exchange kraken --out var/reports/nov.html

Reads the tracker store (`KEYMEDIC_TRACKER_URL`, else the local run's `var/tracker.db`, or `--tracker-db`)
and the KeyMedic database (`KEYMEDIC_DATABASE_URL`). Connection URLs come from the environment only, never
from arguments, which other users of the machine can read. Shows progress while it reads the events and
ends with one line naming the file.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

__all__ = ["add_arguments", "run", "parse_day"]


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` date (argparse type)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-30, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `keymedic report`."""
    parser.add_argument("--since", type=parse_day, help="first day (UTC) of conversations to count")
    parser.add_argument("--until", type=parse_day, help="last day (UTC) to count, included")
    parser.add_argument(
        "--exchange",
        action="append",
        default=[],
        metavar="ID",
        help="only this exchange (repeatable), e.g. kraken",
    )
    parser.add_argument("--out", type=Path, help="the HTML file to write (default var/reports/…)")
    parser.add_argument(
        "--tracker-db", type=Path, help="a SQLite tracker store file (default var/tracker.db)"
    )


def run(args: argparse.Namespace) -> int:
    """Write the report; exit 0, or 2 on bad input."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from bot.config import load_settings
    from bot.exchange_ids import EXCHANGE_IDS
    from bot.observability.logs import install_logging
    from bot.observability.progress import Progress
    from bot.report.data import Filters, build_report
    from bot.report.render import render_html

    install_logging("report", level="warning")
    unknown = sorted(set(args.exchange) - set(EXCHANGE_IDS))
    if unknown:
        print(
            f"keymedic report: unknown exchange {', '.join(unknown)}; use one of {', '.join(EXCHANGE_IDS)}",
            file=sys.stderr,
        )
        return 2
    since = datetime.combine(args.since, time(), timezone.utc) if args.since else None
    # --until is a day people mean inclusively; the window's end is the next midnight.
    until = datetime.combine(args.until + timedelta(days=1), time(), timezone.utc) if args.until else None
    if since is not None and until is not None and until <= since:
        print("keymedic report: --until is before --since", file=sys.stderr)
        return 2
    settings = load_settings()
    if args.tracker_db is not None:
        if not args.tracker_db.is_file():
            print(f"keymedic report: no tracker store at {args.tracker_db}", file=sys.stderr)
            return 2
        tracker_url = f"sqlite:///{args.tracker_db}"
    else:
        tracker_url = settings.tracker_store_url
    out: Path = (
        args.out
        or settings.var_dir / "reports" / f"keymedic-report-{datetime.now(timezone.utc):%Y%m%d-%H%M}.html"
    )
    filters = Filters(since=since, until=until, exchanges=frozenset(args.exchange))

    progress = Progress("report", unit="events", stream=sys.stdout)
    tracker = create_engine(tracker_url, future=True)
    database = create_engine(settings.database_url, future=True)
    try:
        data = build_report(tracker, database, filters, on_event=progress.update)
        page = render_html(data)
    except (SQLAlchemyError, OSError) as error:  # the URL may hold a password: only the error's type
        progress.finish(f"failed: could not read the stores ({type(error).__name__})")
        return 1
    finally:
        tracker.dispose()
        database.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    progress.finish(
        f"{data.conversations} conversations, {data.funnel.get('triaged', 0)} triaged, "
        f"{data.contained} resolved without a person -> {out}"
    )
    return 0
