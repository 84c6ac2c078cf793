"""Find an event's class by its type name from a table, not by walking Rasa's event classes each time.

Rasa 3.6 turns every stored or received event back into an object through `Event.resolve_by_type`
(rasa/shared/core/events.py), which calls `all_subclasses(Event)`: a recursive walk of the whole class
hierarchy with an `inspect.isabstract` check per class, for every single event. Profiled on a tracker store
filled by a benchmark run (cProfile, 200 retrieves of about 60 events each), that walk was 42 % of the time
of loading a tracker; the Rasa server does it again for the events of every action-server answer.

`PATCHES` replaces it (installed by `rasa_plugins.startup.install`) with a lookup in a table built from the
same walk in the same order (the first class with the name wins, as in Rasa's loop). A name the table does
not have rebuilds the table once, for event classes defined after it was built, before Rasa's own fallbacks
("topic", `default`, ValueError) apply.
"""

from __future__ import annotations

from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

from rasa_plugins import patching

__all__ = ["PATCHES", "resolve_by_type"]

_by_name: dict[str, type[Event]] = {}


def _rebuild() -> None:
    table: dict[str, type[Event]] = {}
    for cls in all_subclasses(Event):
        table.setdefault(cls.type_name, cls)
    _by_name.clear()
    _by_name.update(table)


def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    """Rasa's `Event.resolve_by_type`, answered from the table."""
    found = _by_name.get(type_name)
    if found is None:
        _rebuild()
        found = _by_name.get(type_name)
    if found is not None:
        return found
    if type_name == "topic":
        return None  # Rasa's backwards compatibility with old TopicSet events
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


PATCHES = (
    patching.Patch(
        Event,
        "resolve_by_type",
        resolve_by_type,
        "b5cf570fa7f286c7059ec73d8880528d03a78b28cf4e80285a46079c0fa65968",
        static=True,
    ),
)
