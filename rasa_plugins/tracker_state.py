"""`DialogueStateTracker.current_state` without `dataclasses.asdict` over the form's trigger message.

Rasa 3.6 serialises the tracker for every call to the action server (`RemoteAction._action_call_format`,
two or three a KeyMedic form turn) through `current_state`, which turns the active loop into a dict with
`dataclasses.asdict`. The loop carries the whole parse of the message that started the form (intent and FAQ
rankings, tokens, entities), and `asdict` copies it object by object, each leaf through `copy.deepcopy`:
profiled under `make bench`'s load (py-spy), that copy was about 3 % of the Rasa server's event loop, more
than serialising the events themselves (docs/bench.md, "Issue 14: the parse").

`PATCHES` (installed by `rasa_plugins.startup.install`) puts `current_state` below in its place: Rasa's body,
with the active loop copied by `plain_copy`, which gives an equal dict that shares nothing mutable with the
tracker, as `asdict` does.
"""

from __future__ import annotations

from typing import Any

from rasa.shared.core.constants import ACTIVE_LOOP, FOLLOWUP_ACTION
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from rasa_plugins import patching
from rasa_plugins.plain_copy import plain_copy

__all__ = ["PATCHES", "current_state", "active_loop_as_dict"]


def active_loop_as_dict(tracker: DialogueStateTracker) -> dict[str, Any]:
    """What `dataclasses.asdict(tracker.active_loop)` gives, or `{}` without an active loop."""
    loop = tracker.active_loop
    if not loop:
        return {}
    return {
        "name": loop.name,
        "is_interrupted": loop.is_interrupted,
        "rejected": loop.rejected,
        "trigger_message": plain_copy(loop.trigger_message),
    }


def current_state(
    self: DialogueStateTracker, event_verbosity: EventVerbosity = EventVerbosity.NONE
) -> dict[str, Any]:
    """Rasa's `DialogueStateTracker.current_state`, with the active loop copied by `plain_copy`."""
    events = self._events_for_verbosity(event_verbosity)
    events_as_dict = [e.as_dict() for e in events] if events is not None else None
    latest_event_time = None
    if len(self.events) > 0:
        latest_event_time = self.events[-1].timestamp

    return {
        "sender_id": self.sender_id,
        "slots": self.current_slot_values(),
        "latest_message": self._latest_message_data(),
        "latest_event_time": latest_event_time,
        FOLLOWUP_ACTION: self.followup_action,
        "paused": self.is_paused(),
        "events": events_as_dict,
        "latest_input_channel": self.get_latest_input_channel(),
        ACTIVE_LOOP: active_loop_as_dict(self),
        "latest_action": self.latest_action,
        "latest_action_name": self.latest_action_name,
    }


PATCHES = (
    patching.Patch(
        DialogueStateTracker,
        "current_state",
        current_state,
        "a9f1526ceddf7a2871ca65f0f664bec9b06546942cdb37ff020e87747608244c",
    ),
)
