"""Work out a tracker's past dialogue states once per prediction, not once per policy.

Rasa 3.6 asks every policy for its prediction on the same tracker, and each policy rebuilds the tracker's
states from its events (`DialogueStateTracker.past_states` → `Domain.states_for_tracker_history`, which
replays the events into a fresh tracker and reads its state before every action): MemoizationPolicy and
TED with the same arguments, RulePolicy two or three times more. A rebuild costs about a millisecond for a
KeyMedic conversation's window; profiled under `make bench`'s load (py-spy), the rebuilds were about a tenth
of the Rasa server's event loop once the parse was cached (docs/bench.md, "Issue 14: the parse").

`PATCHES` (installed by `rasa_plugins.startup.install`) puts `past_states` below in its place: it keeps, on
the tracker, the states it built for each set of arguments, and hands out a copy (`plain_copy`: the
featurizers change the states they get) while the tracker's events are the ones they were built from.

Why that is exact: the states are a function of the events alone, plus what does not change on a tracker (its
slots' initial values, its sender, its event limit), the domain and the arguments.
`generate_all_prior_trackers` replays `applied_events()` into `init_copy()` and never reads the tracker's
current slots or flags. Rasa only adds events at the end of a tracker (`update`) or starts it over (`_reset`,
then replays), so the number of events and the last event object (kept, so that its identity cannot be reused)
tell whether they changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_plugins import patching
from rasa_plugins.plain_copy import plain_copy

__all__ = ["PATCHES", "past_states"]

_ORIGINAL = DialogueStateTracker.past_states
_MEMO_ATTRIBUTE = "_keymedic_past_states"

_Arguments = tuple[bool, bool, Any]


@dataclass
class _Memo:
    """States built for one domain and one sequence of events, by arguments."""

    domain: Domain
    event_count: int
    last_event: Event | None
    states: dict[_Arguments, list[State]] = field(default_factory=dict)


def _frozen(rule_only_data: dict[str, Any] | None) -> Any:
    """A hashable copy of Rasa's `{"slots": [...], "loops": [...]}`."""
    if rule_only_data is None:
        return None
    return tuple(sorted((key, tuple(value)) for key, value in rule_only_data.items()))


def past_states(
    self: DialogueStateTracker,
    domain: Domain,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[State]:
    """Rasa's `DialogueStateTracker.past_states`, built once per events and arguments."""
    events = self.events
    last_event = events[-1] if events else None
    memo: _Memo | None = self.__dict__.get(_MEMO_ATTRIBUTE)
    if (
        memo is None
        or memo.domain is not domain
        or memo.event_count != len(events)
        or memo.last_event is not last_event
    ):
        memo = _Memo(domain=domain, event_count=len(events), last_event=last_event)
        self.__dict__[_MEMO_ATTRIBUTE] = memo
    arguments = (omit_unset_slots, ignore_rule_only_turns, _frozen(rule_only_data))
    built = memo.states.get(arguments)
    if built is None:
        built = _ORIGINAL(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        memo.states[arguments] = plain_copy(built)
        return built
    return plain_copy(built)


PATCHES = (
    patching.Patch(
        DialogueStateTracker,
        "past_states",
        past_states,
        "5463eefb5c69d27f82cdc7eca84e23b4b82851e9a5ff575bd02447d4d987103b",
    ),
)
