"""The table lookup of event classes answers exactly as Rasa's walk over the event classes does."""

from __future__ import annotations

import pytest
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.utils.common import all_subclasses

from rasa_plugins import event_types, startup

[PATCH] = event_types.PATCHES

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def installed() -> None:
    startup.install()


def test_it_is_what_rasa_calls() -> None:
    assert PATCH.applied()
    assert Event.resolve_by_type("user") is UserUttered


@pytest.mark.parametrize("type_name", sorted({cls.type_name for cls in all_subclasses(Event)}))
def test_every_event_type_resolves_to_rasas_own_answer(type_name: str) -> None:
    assert event_types.resolve_by_type(type_name) is PATCH.original()(type_name)


def test_rasas_fallbacks_stay() -> None:
    assert event_types.resolve_by_type("topic") is None
    assert event_types.resolve_by_type("no_such_event", default=ActionExecuted) is ActionExecuted
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        event_types.resolve_by_type("no_such_event")


def test_an_event_class_defined_later_is_found() -> None:
    event_types.resolve_by_type("slot")  # the table is built

    class LateEvent(SlotSet):
        type_name = "keymedic_test_late_event"

    assert event_types.resolve_by_type("keymedic_test_late_event") is LateEvent


def test_stored_events_come_back_as_the_same_objects() -> None:
    events = [UserUttered("hi", {"name": "greet", "confidence": 1.0}), SlotSet("exchange", "kraken")]
    assert [Event.from_parameters(event.as_dict()) for event in events] == events
