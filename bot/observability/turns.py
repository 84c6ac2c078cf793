"""`keymedic_turn_latency_seconds`: how long the bot took to answer each user message, read from the tracker
store by the web app's `/metrics`.

Why from the tracker store and not timed in the channels: the channels run inside Rasa's process, which
serves no `/metrics` of ours, and there may be several Rasa replicas; the SQL tracker store already records,
for every channel and every replica, when Rasa took the user's message (`user` event) and when the bot went
back to listening (the next `action_listen`, or the `pause` of a hand-off to a person). The difference is the
turn's latency: NLU, policies, every custom action and the replies, what the user waited for (minus the
network).

The collector reads only events it has not seen (by the table's increasing `id`), at most `batch` per
scrape, starting from the newest event when the process starts: like any in-process counter it begins at
zero when the web app starts, which Prometheus' `rate()` expects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.observability.metrics import CHANNELS, TURN_BUCKETS, closed
from bot.report.tracker_store import tracker_events

__all__ = ["TurnLatencyCollector"]

log = logging.getLogger(__name__)

_PENDING_MAX_AGE_S: Final = 3600.0
# Rasa's prefix for the text of a user event it creates for an intent triggered without a message
# (rasa.shared.core.constants.EXTERNAL_MESSAGE_PREFIX; bot/ does not import Rasa).
EXTERNAL_MESSAGE_PREFIX: Final = (
    "EXTERNAL: "  # a user message never answered (Rasa crashed) is forgotten after an hour
)


class TurnLatencyCollector(Collector):
    """Turn latencies by channel, from the tracker store's events."""

    def __init__(self, tracker: Callable[[], Engine], *, batch: int = 20_000) -> None:
        self._tracker = tracker
        self._batch = batch
        self._lock = threading.Lock()
        self._last_id: int | None = None
        self._pending: dict[str, tuple[float, str]] = {}  # sender -> (user message time, channel)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, channel: str, seconds: float) -> None:
        counts = self._buckets.setdefault(channel, [0] * (len(TURN_BUCKETS) + 1))
        for index, bound in enumerate(TURN_BUCKETS):
            if seconds <= bound:
                counts[index] += 1
        counts[-1] += 1
        self._sums[channel] = self._sums.get(channel, 0.0) + seconds

    def _read(self) -> None:
        e = tracker_events
        with self._tracker().connect() as connection:
            if self._last_id is None:
                self._last_id = int(connection.scalar(select(func.max(e.c.id))) or 0)
                return
            rows = connection.execute(
                select(e.c.id, e.c.sender_id, e.c.type_name, e.c.timestamp, e.c.action_name, e.c.data)
                .where(e.c.id > self._last_id, e.c.type_name.in_(("user", "action", "pause")))
                .order_by(e.c.id)
                .limit(self._batch)
            ).all()
        for event_id, sender, type_name, timestamp, action, raw in rows:
            self._last_id = max(self._last_id, int(event_id))
            if timestamp is None:
                continue
            if type_name == "user":
                channel = _person_channel(raw)
                if channel is not None:
                    self._pending[sender] = (float(timestamp), channel)
            elif (action == "action_listen" or type_name == "pause") and sender in self._pending:
                started, channel = self._pending.pop(sender)
                self.observe(channel, max(0.0, float(timestamp) - started))
        horizon = time.time() - _PENDING_MAX_AGE_S
        for sender in [s for s, (t, _) in self._pending.items() if t < horizon]:
            del self._pending[sender]

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            try:
                self._read()
            except Exception as error:  # no tracker store yet (Rasa not started), or it is down
                log.debug("turn latencies unavailable: %s", type(error).__name__)
            family = HistogramMetricFamily(
                "keymedic_turn_latency_seconds",
                "Time from Rasa taking a user's message to the bot listening again, by channel.",
                labels=["channel"],
            )
            for channel, counts in sorted(self._buckets.items()):
                buckets = [(str(bound), float(n)) for bound, n in zip(TURN_BUCKETS, counts, strict=False)]
                buckets.append(("+Inf", float(counts[-1])))
                family.add_metric([channel], buckets, self._sums[channel])
        yield family


def _person_channel(raw: str | None) -> str | None:
    """The channel of a user event a person sent; None for one Rasa made itself from a reminder or an
    external trigger (its text is `EXTERNAL: <intent>`, e.g. the resync check or the outreach offer),
    which nobody waited for."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return "other"
    if not isinstance(data, dict):
        return "other"
    if str(data.get("text") or "").startswith(EXTERNAL_MESSAGE_PREFIX):
        return None
    return closed(data.get("input_channel"), CHANNELS)
