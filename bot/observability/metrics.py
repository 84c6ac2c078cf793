"""The Prometheus metric families of KeyMedic, defined once (docs/operating.md "Metrics").

Every label comes from a closed set (the exchange ids of DESIGN §3, the checklist items and statuses of
`bot.types.diagnosis`, the action names of the domain, a few fixed kinds), so no user id, conversation id,
key or free text can ever become a label value: anything outside its set is recorded as `other`. That also
bounds the number of time series, which Prometheus needs.

What is recorded where:

- `keymedic_turn_latency_seconds`: read from the tracker store by the web app (`bot.observability.turns`);
- `keymedic_action_latency_seconds`: the action server, around each action call (`actions/server.py`);
- `keymedic_diagnoses_total`, `keymedic_exchange_errors_total`: `bot.diagnosis.service.diagnose`;
- `keymedic_tickets_opened_total`: `bot.handoff.services.ticket_opened` (in the action server);
- resyncs, their duration, delivered notifications and the outbox backlog: derived from the database at
  scrape time (`bot.observability.jobfigures`).

The job figures come from the database, not from the worker's memory: the worker is a separate process
(several, in production), so its counters would be invisible to the web app's `/metrics`, and the database
already holds every sync run and outbox row with its status and timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from bot.exchange_ids import EXCHANGE_IDS

if TYPE_CHECKING:  # the sandbox serves /health through this package and must not import what it checks
    from bot.types.diagnosis import Diagnosis

__all__ = [
    "REGISTRY",
    "CONTENT_TYPE",
    "OTHER",
    "ERROR_KINDS",
    "CHANNELS",
    "TURN_BUCKETS",
    "ACTION_LATENCY",
    "DIAGNOSES",
    "EXCHANGE_ERRORS",
    "TICKETS_OPENED",
    "TURNS_NOT_SAVED",
    "PARSE_CACHE_LOOKUPS",
    "closed",
    "observe_action",
    "record_diagnosis",
    "record_exchange_error",
    "record_ticket_opened",
    "render",
    "known_actions",
]

# Our own registry, not prometheus_client's global one: tests build fresh ones, and a process exposes only
# what KeyMedic defines (plus the collectors added on purpose, e.g. the job figures in the web app).
REGISTRY: Final = CollectorRegistry(auto_describe=True)
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
OTHER: Final = "other"

# Chat turns answer in about a second; a turn that runs a live diagnosis can take up to the 8 s deadline.
TURN_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
_ACTION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)

ERROR_KINDS: Final[frozenset[str]] = frozenset({"unreachable", "rate_limited", "auth", "clock_skew"})
CHANNELS: Final[frozenset[str]] = frozenset({"rest", "socketio", "slack"})
_EXCHANGES: Final[frozenset[str]] = frozenset(EXCHANGE_IDS)
# The checklist items and statuses of `bot.types.diagnosis.Item` and `Status` (a unit test keeps them equal).
ITEMS: Final[frozenset[str]] = frozenset(
    {"format", "key_known", "secret_ok", "passphrase_ok", "activated", "read_permission",
     "no_trade_or_withdraw", "no_ip_restriction", "has_activity"}
)  # fmt: skip
STATUSES: Final[frozenset[str]] = frozenset({"pass", "fail", "unknown", "not_applicable"})
_OUTCOMES: Final[frozenset[str]] = frozenset({"ok", "error"})
# Why a ticket was opened: the reasons `actions/handoff.py` writes on tickets, as short label values.
TICKET_REASONS: Final[dict[str, str]] = {
    "user asked for a person": "request_human",
    "key still failing after checks": "key_still_failing",
}

# The custom actions of the domain; set by the action server at start (`known_actions`), so an action that is
# renamed or added is labelled by its name, never by something a request chose.
_actions: set[str] = set()

ACTION_LATENCY: Final = Histogram(
    "keymedic_action_latency_seconds",
    "Time one custom action took in the action server, by action and whether it raised.",
    ["action", "outcome"],
    buckets=_ACTION_BUCKETS,
    registry=REGISTRY,
)
DIAGNOSES: Final = Counter(
    "keymedic_diagnoses_total",
    "Checklist item outcomes of live key diagnoses, by exchange, item and outcome.",
    ["exchange", "item", "outcome"],
    registry=REGISTRY,
)
EXCHANGE_ERRORS: Final = Counter(
    "keymedic_exchange_errors_total",
    "Diagnoses the exchange answered with an error, by kind: unreachable, rate_limited, auth, clock_skew.",
    ["exchange", "kind"],
    registry=REGISTRY,
)
# Counted in the Rasa server's process (rasa_plugins/tracker_store.py), served on its metrics port when
# KEYMEDIC_RASA_METRICS_PORT is set (rasa_plugins/run.py).
TURNS_NOT_SAVED: Final = Counter(
    "keymedic_turns_not_saved_total",
    "Turns whose events the tracker store could not save after every retry; the user was told to resend.",
    registry=REGISTRY,
)
# Counted in the Rasa server's process too (rasa_plugins/parse_cache.py): texts answered from the parse cache
# (`hit`) or parsed by the pipeline (`miss`).
PARSE_CACHE_LOOKUPS: Final = Counter(
    "keymedic_parse_cache_lookups_total",
    "Messages whose parse was looked up in the Rasa server's parse cache, by result: hit or miss.",
    ["result"],
    registry=REGISTRY,
)
TICKETS_OPENED: Final = Counter(
    "keymedic_tickets_opened_total",
    "Support tickets opened (or reopened) by this process, by reason.",
    ["reason"],
    registry=REGISTRY,
)


def closed(value: object, allowed: Iterable[str]) -> str:
    """`value` when it is one of `allowed`, else `other`: the only way a label value is chosen."""
    return value if isinstance(value, str) and value in allowed else OTHER


def known_actions(names: Iterable[str]) -> None:
    """Tell the metrics which action names are label values (the action server calls it at start)."""
    _actions.update(names)


def observe_action(action: str, seconds: float, *, failed: bool = False) -> None:
    """One run of custom action `action` took `seconds`."""
    ACTION_LATENCY.labels(closed(action, _actions), "error" if failed else "ok").observe(seconds)


def record_diagnosis(diagnosis: Diagnosis) -> None:
    """Count each checklist item's outcome, and the exchange error the diagnosis met, if any."""
    exchange = closed(diagnosis.exchange, _EXCHANGES)
    for outcome in diagnosis.items:
        DIAGNOSES.labels(
            exchange, closed(outcome.item.value, ITEMS), closed(outcome.status.value, STATUSES)
        ).inc()
    if diagnosis.unavailable is not None:
        record_exchange_error(diagnosis.exchange, diagnosis.unavailable.kind)


def record_exchange_error(exchange: str, kind: str) -> None:
    """Count one exchange error. Timeouts and 5xx answers are `unreachable`: to the user they are the same."""
    mapped = {"timeout": "unreachable", "server_error": "unreachable"}.get(kind, kind)
    EXCHANGE_ERRORS.labels(closed(exchange, _EXCHANGES), closed(mapped, ERROR_KINDS)).inc()


def record_ticket_opened(reason: str) -> None:
    """Count one ticket opening (a new ticket, or a closed one reopened)."""
    TICKETS_OPENED.labels(TICKET_REASONS.get(reason, OTHER)).inc()


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The text exposition of `registry` (what `/metrics` answers)."""
    return generate_latest(registry)
