"""The metric families count what happened, with labels only from closed sets."""

from __future__ import annotations

import pytest

from bot.observability import metrics
from bot.observability.metrics import REGISTRY
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def diagnosis(
    exchange: str, failing: dict[Item, Status], unavailable: Unavailable | None = None
) -> Diagnosis:
    items = tuple(ItemOutcome(item, failing.get(item, Status.PASS)) for item in Item)
    return Diagnosis(exchange, items, unavailable)


def test_a_diagnosis_counts_one_outcome_per_checklist_item() -> None:
    before_fail = sample(
        "keymedic_diagnoses_total", exchange="kraken", item="read_permission", outcome="fail"
    )
    before_pass = sample("keymedic_diagnoses_total", exchange="kraken", item="format", outcome="pass")

    metrics.record_diagnosis(diagnosis("kraken", {Item.READ_PERMISSION: Status.FAIL}))
    metrics.record_diagnosis(diagnosis("kraken", {}))

    assert sample("keymedic_diagnoses_total", exchange="kraken", item="read_permission", outcome="fail") == (
        before_fail + 1
    )
    assert (
        sample("keymedic_diagnoses_total", exchange="kraken", item="format", outcome="pass")
        == before_pass + 2
    )


@pytest.mark.parametrize(
    ("kind", "counted_as"),
    [("unreachable", "unreachable"), ("timeout", "unreachable"), ("server_error", "unreachable"),
     ("rate_limited", "rate_limited"), ("clock_skew", "clock_skew")],
)  # fmt: skip
def test_an_unavailable_exchange_counts_as_an_exchange_error_of_its_kind(kind: str, counted_as: str) -> None:
    before = sample("keymedic_exchange_errors_total", exchange="okx", kind=counted_as)
    metrics.record_diagnosis(diagnosis("okx", {}, Unavailable(kind, "down")))  # type: ignore[arg-type]
    assert sample("keymedic_exchange_errors_total", exchange="okx", kind=counted_as) == before + 1


def test_labels_outside_their_closed_set_become_other() -> None:
    # Nothing a request or a user chose can become a label value (no user ids, keys or free text).
    secretish = "Zx9kQ2mW7pL4vN8rT1yB6cH3jF5gD0sA"
    before = sample("keymedic_exchange_errors_total", exchange="other", kind="other")
    metrics.record_exchange_error(secretish, secretish)
    metrics.observe_action(secretish, 0.1)
    metrics.record_ticket_opened(secretish)
    assert sample("keymedic_exchange_errors_total", exchange="other", kind="other") == before + 1
    exposition = metrics.render().decode()
    assert secretish not in exposition
    assert 'keymedic_action_latency_seconds_count{action="other",outcome="ok"}' in exposition
    assert 'keymedic_tickets_opened_total{reason="other"}' in exposition


def test_known_action_names_are_labels_and_failures_are_told_apart() -> None:
    metrics.known_actions(["action_check_api_key"])
    before_ok = sample("keymedic_action_latency_seconds_count", action="action_check_api_key", outcome="ok")
    before_error = sample(
        "keymedic_action_latency_seconds_count", action="action_check_api_key", outcome="error"
    )
    metrics.observe_action("action_check_api_key", 0.3)
    metrics.observe_action("action_check_api_key", 0.3, failed=True)
    assert sample("keymedic_action_latency_seconds_count", action="action_check_api_key", outcome="ok") == (
        before_ok + 1
    )
    assert sample(
        "keymedic_action_latency_seconds_count", action="action_check_api_key", outcome="error"
    ) == (before_error + 1)


def test_ticket_reasons_map_to_short_labels() -> None:
    before = sample("keymedic_tickets_opened_total", reason="request_human")
    metrics.record_ticket_opened("user asked for a person")
    assert sample("keymedic_tickets_opened_total", reason="request_human") == before + 1


def test_the_closed_sets_are_the_checklists_items_and_statuses() -> None:
    assert metrics.ITEMS == {item.value for item in Item}
    assert metrics.STATUSES == {status.value for status in Status}
