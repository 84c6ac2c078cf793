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

Both kinds of states from one replay (session 7): per prediction, RulePolicy asks for the states with
`ignore_rule_only_turns=False`, MemoizationPolicy and TED with `True`, on the same events; each is a walk
over the same replayed prior trackers (`generate_all_prior_trackers`) and the same `get_active_state` of
each, which was most of their cost. So a miss builds both in one walk (`_both_kinds`): each prior
tracker's state is read once, the rule kind keeps it cleaned, and the ML kind takes a copy through Rasa's
steps (`Domain.states_for_tracker_history`, whose body `_both_kinds` follows step for step; `RELIED_ON`
holds its hash, and a test compares both kinds with Rasa's at every step of every test story).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_plugins import patching
from rasa_plugins.plain_copy import plain_copy

__all__ = ["PATCHES", "RELIED_ON", "past_states"]

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


def _both_kinds(
    tracker: DialogueStateTracker,
    domain: Domain,
    omit_unset_slots: bool,
    rule_only_data: dict[str, Any] | None,
) -> tuple[list[State], list[State]]:
    """`domain.states_for_tracker_history(tracker, omit_unset_slots, ignore, rule_only_data)` for `ignore`
    False and True, from one replay of the tracker's events."""
    with_rule_turns: list[State] = []
    without: list[State] = []
    last_ml_action_sub_state = None
    turn_was_hidden = False
    for prior, hide_rule_turn in tracker.generate_all_prior_trackers():
        state = domain.get_active_state(prior, omit_unset_slots=omit_unset_slots)
        with_rule_turns.append(domain._clean_state(state))
        # From here on, Rasa's steps for ignore_rule_only_turns=True.
        if not turn_was_hidden:
            last_ml_action_sub_state = domain._get_prev_action_sub_state(prior)
        if not prior.followup_action and not prior.latest_action_name == prior.active_loop_name:
            turn_was_hidden = hide_rule_turn
        if turn_was_hidden:
            continue
        # Rasa reads a fresh state here; an equal one whose sub-states the steps below may change freely
        # (they pop slots and replace the user and previous-action parts), leaving the rule kind's alone.
        ml_state = {kind: dict(sub) if isinstance(sub, dict) else sub for kind, sub in state.items()}
        domain._remove_rule_only_features(ml_state, rule_only_data)
        if without:
            domain._substitute_rule_only_user_input(ml_state, without[-1])
        if last_ml_action_sub_state:
            ml_state[PREVIOUS_ACTION] = last_ml_action_sub_state
        without.append(domain._clean_state(ml_state))
    return with_rule_turns, without


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
    frozen = _frozen(rule_only_data)
    arguments = (omit_unset_slots, ignore_rule_only_turns, frozen)
    built = memo.states.get(arguments)
    if built is None:
        with_rule_turns, without = _both_kinds(self, domain, omit_unset_slots, rule_only_data)
        memo.states[(omit_unset_slots, False, frozen)] = with_rule_turns
        memo.states[(omit_unset_slots, True, frozen)] = without
        built = without if ignore_rule_only_turns else with_rule_turns
    return plain_copy(built)


# Rasa's functions `_both_kinds` follows step for step (source SHA-256; tests/unit/test_rasa_plugins.py).
RELIED_ON: dict[tuple[type, str], str] = {
    (
        Domain,
        "states_for_tracker_history",
    ): "035111ce73ac90ba50e143abf556f924af07d9f452893f5a96a62895d44df8b7",
    (DialogueStateTracker, "generate_all_prior_trackers"): (
        "a1f6954347b52649a7b1054741338997d2369197d91acb2eab7f6b11d3855ed1"
    ),
}

PATCHES = (
    patching.Patch(
        DialogueStateTracker,
        "past_states",
        past_states,
        "5463eefb5c69d27f82cdc7eca84e23b4b82851e9a5ff575bd02447d4d987103b",
    ),
)
