"""The numbers of `keymedic report`, from the tracker store and the KeyMedic database.

The tracker store is Rasa's SQL tracker store (its `events` table: one row per event with `sender_id`,
`type_name`, `timestamp`, `intent_name`, `action_name` and the event as JSON in `data`), read here with
SQLAlchemy Core directly: `bot/` never imports Rasa (DESIGN §2), and the table is a stable, documented shape.

A **conversation** is one session of one sender: it starts at a `session_started` event (or the sender's
first event in the window) and ends where the sender's next session starts. For each conversation:

- **triaged**: the user reported a broken key (`TRIAGE_INTENTS`), the first step of the article's flow;
- **key updated**: a credential submitted in this conversation was activated on the wallet (KeyMedic's
  `credentials` table: `conversation_id`, `activated_at`);
- **resynced**: a sync run of that credential succeeded (`sync_runs`);
- **handed off**: the conversation's support ticket was opened within it (`tickets`);
- **contained**: resynced without a hand-off, i.e. resolved without a person;
- **time to resolution**: from the first triage message to the end of the successful resync;
- **CSAT**: the user's 1-5 answer to the rating question (the `csat_rating` slot, issue 16), the last one
  of the conversation, averaged per exchange and per path (contained, handed off, neither).

Failing checklist items come from the recorded live diagnoses (`diagnoses`: `fail` and `unknown` items per
exchange). Fallback messages are the user messages the bot answered with its fallback (or that NLU marked
`nlu_fallback`), redacted again (`bot.redaction`) and counted.

Filters: a conversation (and a diagnosis) counts when it started in `[since, until)`; with exchanges given,
only conversations about one of them (the `exchange` slot, else the wallet of its key) and their diagnoses.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.csat import MAX_RATING, MIN_RATING
from bot.csat import SLOT as CSAT_SLOT
from bot.redaction import redact
from bot.report.tracker_store import tracker_events
from bot.store import orm

__all__ = [
    "TRIAGE_INTENTS",
    "FALLBACK_ACTIONS",
    "Filters",
    "Conversation",
    "ReportData",
    "tracker_events",
    "read_conversations",
    "build_report",
]

TRIAGE_INTENTS: Final = frozenset(
    {"sync_stopped", "invalid_key_error", "key_revoked", "security_changed", "update_key"}
)
FALLBACK_ACTIONS: Final = frozenset({"action_default_fallback", "utter_default"})
_FALLBACK_INTENT: Final = "nlu_fallback"
TOP_FALLBACKS: Final = 20
_MAX_FALLBACK_CHARS: Final = 200


@dataclass(frozen=True)
class Filters:
    """Which conversations and diagnoses count."""

    since: datetime | None = None
    until: datetime | None = None
    exchanges: frozenset[str] = frozenset()

    def in_window(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and (self.until is None or moment < self.until)


@dataclass
class Conversation:
    """One session of one sender, with what the tracker says happened in it."""

    sender_id: str
    started_at: datetime
    ended_at: datetime | None = None  # where the sender's next session starts
    triaged_at: datetime | None = None
    exchange: str | None = None
    fallbacks: list[str] = field(default_factory=list)
    heard_user: bool = False
    # Filled from the KeyMedic database:
    key_updated: bool = False
    resynced_at: datetime | None = None
    handed_off: bool = False
    csat: int | None = None  # CSAT (issue 16)

    @property
    def path(self) -> str:
        """Which way the conversation went, for CSAT per path."""
        if self.handed_off:
            return "handed off"
        return "contained" if self.key_updated and self.contained else "neither"

    @property
    def resynced(self) -> bool:
        return self.resynced_at is not None

    @property
    def contained(self) -> bool:
        return self.resynced and not self.handed_off

    @property
    def resolution_s(self) -> float | None:
        if self.triaged_at is None or self.resynced_at is None or self.handed_off:
            return None
        return max(0.0, (self.resynced_at - self.triaged_at).total_seconds())

    def covers(self, moment: datetime) -> bool:
        return moment >= self.started_at and (self.ended_at is None or moment < self.ended_at)


@dataclass
class ReportData:
    """Everything the report shows; the plots are drawn from exactly these numbers."""

    filters: Filters
    conversations: int = 0
    funnel: dict[str, int] = field(default_factory=dict)  # triaged, key_updated, resynced
    handed_off: int = 0
    contained: int = 0
    # exchange -> item -> count of `fail`/`unknown` outcomes
    failing_items: dict[str, dict[str, int]] = field(default_factory=dict)
    diagnoses: int = 0
    resolution_s: list[float] = field(default_factory=list)
    top_fallbacks: list[tuple[str, int]] = field(default_factory=list)
    # CSAT (issue 16): the ratings given, per exchange ("unknown" without one) and per path.
    csat_by_exchange: dict[str, list[int]] = field(default_factory=dict)
    csat_by_path: dict[str, list[int]] = field(default_factory=dict)

    @staticmethod
    def csat_summary(groups: dict[str, list[int]]) -> dict[str, dict[str, float | int]]:
        """Per group: how many ratings, and their mean."""
        return {
            key: {"ratings": len(values), "mean": round(statistics.fmean(values), 2)}
            for key, values in sorted(groups.items())
            if values
        }

    @property
    def containment_rate(self) -> float | None:
        """Share of triaged conversations resolved (resynced) without a person."""
        triaged = self.funnel.get("triaged", 0)
        return self.contained / triaged if triaged else None

    @property
    def handoff_rate(self) -> float | None:
        """Share of triaged conversations handed to support."""
        triaged = self.funnel.get("triaged", 0)
        return self.handed_off / triaged if triaged else None

    @property
    def median_resolution_s(self) -> float | None:
        return statistics.median(self.resolution_s) if self.resolution_s else None

    def to_dict(self) -> dict[str, Any]:
        """The data as JSON-ready values (embedded in the HTML, read by tests)."""
        return {
            "filters": {
                "since": self.filters.since.isoformat() if self.filters.since else None,
                "until": self.filters.until.isoformat() if self.filters.until else None,
                "exchanges": sorted(self.filters.exchanges),
            },
            "conversations": self.conversations,
            "funnel": dict(self.funnel),
            "handed_off": self.handed_off,
            "contained": self.contained,
            "containment_rate": self.containment_rate,
            "handoff_rate": self.handoff_rate,
            "failing_items": {k: dict(v) for k, v in sorted(self.failing_items.items())},
            "diagnoses": self.diagnoses,
            "resolution_s": list(self.resolution_s),
            "median_resolution_s": self.median_resolution_s,
            "top_fallbacks": [[text, count] for text, count in self.top_fallbacks],
            "csat": {
                "by_exchange": self.csat_summary(self.csat_by_exchange),
                "by_path": self.csat_summary(self.csat_by_path),
            },
        }


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _data(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _event_rows(tracker: Engine, filters: Filters) -> Iterator[Any]:
    e = tracker_events
    query = select(e.c.sender_id, e.c.type_name, e.c.timestamp, e.c.intent_name, e.c.action_name, e.c.data)
    if filters.since is not None:
        query = query.where(e.c.timestamp >= filters.since.timestamp())
    if filters.until is not None:
        query = query.where(e.c.timestamp < filters.until.timestamp())
    query = query.order_by(e.c.sender_id, e.c.timestamp, e.c.id)
    with tracker.connect() as connection:
        # Streamed: a busy tracker store holds millions of events.
        yield from connection.execution_options(stream_results=True, yield_per=2000).execute(query)


def read_conversations(
    tracker: Engine, filters: Filters, *, on_event: Callable[[int], None] | None = None
) -> list[Conversation]:
    """The conversations of the tracker store that started in the window (before the exchange filter)."""
    conversations: list[Conversation] = []
    current: Conversation | None = None
    pending_user_text: str | None = None
    seen = 0
    for sender_id, type_name, timestamp, intent, action, raw in _event_rows(tracker, filters):
        seen += 1
        if on_event is not None and seen % 1000 == 0:
            on_event(seen)
        moment = _utc(float(timestamp or 0.0))
        # Rasa marks a new session with `action_session_start` then `session_started`; either one is a
        # boundary once the current conversation has heard from the user (a restart before that is the same
        # conversation).
        session_mark = type_name == "session_started" or (
            type_name == "action" and action == "action_session_start"
        )
        if current is None or current.sender_id != sender_id or (session_mark and current.heard_user):
            if current is not None and current.sender_id == sender_id:
                current.ended_at = moment
            current = Conversation(sender_id=sender_id, started_at=moment)
            conversations.append(current)
            pending_user_text = None
        if type_name == "user":
            current.heard_user = True
            data = _data(raw)
            text = data.get("text")
            pending_user_text = text if isinstance(text, str) else None
            if intent in TRIAGE_INTENTS and current.triaged_at is None:
                current.triaged_at = moment
            if intent == _FALLBACK_INTENT and pending_user_text:
                current.fallbacks.append(pending_user_text)
                pending_user_text = None
        elif type_name == "action" and action in FALLBACK_ACTIONS and pending_user_text:
            current.fallbacks.append(pending_user_text)
            pending_user_text = None
        elif type_name == "action" and action == "action_listen":
            pending_user_text = None
        elif type_name == "slot" and action == CSAT_SLOT:
            rating = str(_data(raw).get("value") or "")
            # Only what action_record_csat could have set; anything else in the slot is not a rating.
            if rating.isdigit() and MIN_RATING <= int(rating) <= MAX_RATING:
                current.csat = int(rating)
        elif type_name == "slot" and action == "exchange":
            value = _data(raw).get("value")
            if isinstance(value, str) and value:
                current.exchange = value
    if on_event is not None:
        on_event(seen)
    return [c for c in conversations if filters.in_window(c.started_at)]


def _by_sender(conversations: Iterable[Conversation]) -> dict[str, list[Conversation]]:
    grouped: dict[str, list[Conversation]] = {}
    for conversation in conversations:
        grouped.setdefault(conversation.sender_id, []).append(conversation)
    return grouped


def _conversation_at(
    grouped: dict[str, list[Conversation]], sender: str, moment: datetime
) -> Conversation | None:
    for conversation in grouped.get(sender, ()):
        if conversation.covers(moment):
            return conversation
    return None


def _join_keymedic(database: Engine, conversations: Sequence[Conversation]) -> None:
    """Mark each conversation's key update, resync and hand-off from the KeyMedic database."""
    grouped = _by_sender(conversations)
    senders = list(grouped)
    if not senders:
        return
    c, w, r, t = orm.credentials, orm.wallets, orm.sync_runs, orm.tickets
    with database.connect() as connection:
        for chunk in _chunks(senders, 500):
            updates = connection.execute(
                select(c.c.id, c.c.conversation_id, c.c.activated_at, w.c.exchange)
                .select_from(c.join(w, c.c.wallet_id == w.c.id))
                .where(c.c.conversation_id.in_(chunk), c.c.activated_at.is_not(None))
            ).all()
            by_credential: dict[int, Conversation] = {}
            for credential_id, sender, activated_at, exchange in updates:
                conversation = _conversation_at(grouped, sender, _aware(activated_at))
                if conversation is None:
                    continue
                conversation.key_updated = True
                conversation.exchange = conversation.exchange or exchange
                by_credential[int(credential_id)] = conversation
            if by_credential:
                runs = connection.execute(
                    select(r.c.credential_id, r.c.finished_at).where(
                        r.c.credential_id.in_(list(by_credential)), r.c.status == "succeeded"
                    )
                ).all()
                for credential_id, finished_at in runs:
                    conversation = by_credential[int(credential_id)]
                    finished = _aware(finished_at)
                    if conversation.resynced_at is None or finished < conversation.resynced_at:
                        conversation.resynced_at = finished
            for sender, created_at in connection.execute(
                select(t.c.conversation_id, t.c.created_at).where(t.c.conversation_id.in_(chunk))
            ):
                conversation = _conversation_at(grouped, sender, _aware(created_at))
                if conversation is not None:
                    conversation.handed_off = True


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _failing_items(database: Engine, filters: Filters) -> tuple[int, dict[str, dict[str, int]]]:
    d = orm.diagnoses
    query = select(d.c.exchange, d.c.outcome, d.c.created_at)
    if filters.exchanges:
        query = query.where(d.c.exchange.in_(sorted(filters.exchanges)))
    counts: dict[str, Counter[str]] = {}
    total = 0
    with database.connect() as connection:
        for exchange, outcome, created_at in connection.execute(query):
            if not filters.in_window(_aware(created_at)):
                continue
            total += 1
            items = outcome.get("items") if isinstance(outcome, dict) else None
            for item in items or []:
                if isinstance(item, dict) and item.get("status") in ("fail", "unknown"):
                    counts.setdefault(exchange, Counter())[str(item.get("item"))] += 1
    return total, {exchange: dict(counter.most_common()) for exchange, counter in counts.items()}


def _normalised(text: str) -> str:
    # Redacted again: the channels redact before Rasa stores a message, but a tracker store may predate that.
    cleaned = " ".join(redact(text).text.split()).lower()
    return cleaned[:_MAX_FALLBACK_CHARS]


def build_report(
    tracker: Engine,
    database: Engine,
    filters: Filters,
    *,
    on_event: Callable[[int], None] | None = None,
) -> ReportData:
    """Read both stores and compute the report's numbers."""
    conversations = read_conversations(tracker, filters, on_event=on_event)
    _join_keymedic(database, conversations)
    if filters.exchanges:
        conversations = [c for c in conversations if c.exchange in filters.exchanges]
    data = ReportData(filters=filters, conversations=len(conversations))
    triaged = [c for c in conversations if c.triaged_at is not None]
    data.funnel = {
        "triaged": len(triaged),
        "key_updated": sum(1 for c in triaged if c.key_updated),
        "resynced": sum(1 for c in triaged if c.key_updated and c.resynced),
    }
    data.handed_off = sum(1 for c in triaged if c.handed_off)
    data.contained = sum(1 for c in triaged if c.key_updated and c.contained)
    data.resolution_s = sorted(s for c in triaged if (s := c.resolution_s) is not None)
    data.diagnoses, data.failing_items = _failing_items(database, filters)
    fallbacks: Counter[str] = Counter(_normalised(text) for c in conversations for text in c.fallbacks)
    data.top_fallbacks = sorted(fallbacks.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FALLBACKS]
    for conversation in conversations:
        if conversation.csat is not None:
            exchange = conversation.exchange or "unknown"
            data.csat_by_exchange.setdefault(exchange, []).append(conversation.csat)
            data.csat_by_path.setdefault(conversation.path, []).append(conversation.csat)
    return data
