"""The background jobs' figures, read from the database when Prometheus scrapes (a custom collector).

Resyncs and outbox deliveries run in the worker (`keymedic worker`, several of them in production, each
possibly with process workers). Counters kept in a worker's memory would not reach the web app's `/metrics`,
would reset with every restart, and prometheus_client's multiprocess mode only merges processes that share
one directory on one machine. The database already records every sync run (status, started and finished
times) and every outbox row (status, attempts), so the figures are read from there: right whatever the
number of workers, and unchanged by restarts.

A scrape runs a handful of aggregate queries; the answer is cached for `ttl_s` so a scrape storm, or several
Prometheus servers, cost the database no more than one query set per `ttl_s`. Each web replica reports the
same totals: aggregate them with `max`, not `sum` (docs/operating.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bot.exchange_ids import EXCHANGE_IDS
from bot.observability.metrics import closed
from bot.store import orm
from bot.store.db import Database

__all__ = ["JobFigures", "JobFiguresCollector", "read_job_figures", "RESYNC_BUCKETS"]

log = logging.getLogger(__name__)

# A small wallet resyncs in seconds; a large one (100,000 rows) in minutes.
RESYNC_BUCKETS: Final[tuple[float, ...]] = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_SYNC_STATUSES: Final = frozenset({"queued", "running", "succeeded", "failed"})
_OUTBOX_STATUSES: Final = frozenset({"pending", "sending", "delivered"})


@dataclass
class JobFigures:
    """What the database says about the background work, ready to expose."""

    # (exchange, status) -> sync runs
    resyncs: dict[tuple[str, str], int] = field(default_factory=dict)
    # exchange -> durations in seconds of finished runs (succeeded or failed)
    durations: dict[str, list[float]] = field(default_factory=dict)
    # (reason, status) -> outbox rows
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_pending_s: float = 0.0
    tickets: int = 0

    @property
    def backlog(self) -> int:
        """Notifications not delivered yet."""
        return sum(n for (_, status), n in self.outbox.items() if status != "delivered")


def _aware(moment: datetime) -> datetime:
    # SQLite hands the raw column back without the offset when read through Core aggregates.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def read_job_figures(database: Database, *, now: datetime | None = None) -> JobFigures:
    """Aggregate the sync runs, outbox and tickets tables."""
    figures = JobFigures()
    runs, wallets, outbox = orm.sync_runs, orm.wallets, orm.outbox
    with database.read_sessions() as session:
        counted = session.execute(
            select(wallets.c.exchange, runs.c.status, func.count())
            .select_from(runs.join(wallets, runs.c.wallet_id == wallets.c.id))
            .group_by(wallets.c.exchange, runs.c.status)
        )
        for exchange, status, count in counted:
            key = (closed(exchange, EXCHANGE_IDS), closed(_value(status), _SYNC_STATUSES))
            figures.resyncs[key] = figures.resyncs.get(key, 0) + int(count)
        finished = session.execute(
            select(wallets.c.exchange, runs.c.started_at, runs.c.finished_at)
            .select_from(runs.join(wallets, runs.c.wallet_id == wallets.c.id))
            .where(runs.c.started_at.is_not(None), runs.c.finished_at.is_not(None))
        )
        for exchange, started, ended in finished:
            seconds = max(0.0, (_aware(ended) - _aware(started)).total_seconds())
            figures.durations.setdefault(closed(exchange, EXCHANGE_IDS), []).append(seconds)
        for reason, status, count in session.execute(
            select(outbox.c.reason, outbox.c.status, func.count()).group_by(outbox.c.reason, outbox.c.status)
        ):
            key = (str(reason)[:32], closed(status, _OUTBOX_STATUSES))
            figures.outbox[key] = figures.outbox.get(key, 0) + int(count)
        oldest = session.scalar(select(func.min(outbox.c.created_at)).where(outbox.c.status != "delivered"))
        if oldest is not None:
            reference = now or datetime.now(timezone.utc)
            figures.oldest_pending_s = max(0.0, (reference - _aware(oldest)).total_seconds())
        figures.tickets = int(session.scalar(select(func.count()).select_from(orm.tickets)) or 0)
    return figures


def _value(status: object) -> str:
    return str(getattr(status, "value", status))


def _histogram(durations: Sequence[float]) -> tuple[list[tuple[str, float]], float]:
    buckets: list[tuple[str, float]] = []
    for bound in RESYNC_BUCKETS:
        buckets.append((str(bound), float(sum(1 for d in durations if d <= bound))))
    buckets.append(("+Inf", float(len(durations))))
    return buckets, float(sum(durations))


class JobFiguresCollector(Collector):
    """Exposes `read_job_figures` as Prometheus families; cached for `ttl_s`."""

    def __init__(
        self,
        database: Callable[[], Database],
        *,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, JobFigures | None] | None = None

    def _figures(self) -> JobFigures | None:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._ttl_s:
                return self._cached[1]
            try:
                figures: JobFigures | None = read_job_figures(self._database())
            except Exception as error:  # the scrape still answers; `keymedic_job_figures_up` says why not
                log.warning("job figures unavailable: %s", type(error).__name__)
                figures = None
            self._cached = (now, figures)
            return figures

    def describe(self) -> Iterable[Metric]:
        return []  # families are only known once the database answered

    def collect(self) -> Iterator[Metric]:
        figures = self._figures()
        up = GaugeMetricFamily("keymedic_job_figures_up", "1 when the job figures could be read.")
        up.add_metric([], 1.0 if figures is not None else 0.0)
        yield up
        if figures is None:
            return
        resyncs = CounterMetricFamily(
            "keymedic_resyncs",
            "Wallet resyncs that finished, by exchange, status.",
            labels=["exchange", "status"],
        )
        active = GaugeMetricFamily(
            "keymedic_resyncs_active", "Wallet resyncs queued or running, by status.", labels=["status"]
        )
        open_counts: dict[str, int] = {"queued": 0, "running": 0}
        for (exchange, status), count in sorted(figures.resyncs.items()):
            if status in ("succeeded", "failed"):
                resyncs.add_metric([exchange, status], float(count))
            elif status in open_counts:
                open_counts[status] += count
        for status, count in open_counts.items():
            active.add_metric([status], float(count))
        yield resyncs
        yield active
        duration = HistogramMetricFamily(
            "keymedic_resync_duration_seconds",
            "Time from a resync being claimed by a worker to it finishing, by exchange.",
            labels=["exchange"],
        )
        for exchange, durations in sorted(figures.durations.items()):
            buckets, total = _histogram(durations)
            duration.add_metric([exchange], buckets, total)
        yield duration
        delivered = CounterMetricFamily(
            "keymedic_notifications_delivered",
            "Support notifications (ticket hand-offs) delivered through the outbox, by reason.",
            labels=["reason"],
        )
        backlog = GaugeMetricFamily(
            "keymedic_outbox_backlog", "Outbox notifications not delivered yet, by reason.", labels=["reason"]
        )
        reasons = sorted({reason for reason, _ in figures.outbox} or {"ticket_opened"})
        for reason in reasons:
            delivered.add_metric([reason], float(figures.outbox.get((reason, "delivered"), 0)))
            backlog.add_metric(
                [reason],
                float(sum(n for (r, s), n in figures.outbox.items() if r == reason and s != "delivered")),
            )
        yield delivered
        yield backlog
        oldest = GaugeMetricFamily(
            "keymedic_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered notification (0 when none waits).",
        )
        oldest.add_metric([], figures.oldest_pending_s)
        yield oldest
        tickets = CounterMetricFamily("keymedic_tickets", "Support tickets (one per conversation).")
        tickets.add_metric([], float(figures.tickets))
        yield tickets
