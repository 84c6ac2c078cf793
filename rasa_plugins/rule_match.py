"""RulePolicy's rule match with each rule read once per process, not again at every check.

Rasa 3.6's `RulePolicy._get_possible_keys` narrows the set of rule keys state by state, going back from the
current one, and checks every remaining key against the state with `_is_rule_applicable`. That check gets the
rule's states from a cached `json.loads`, copies and reverses them on every call, and compares each feature
with list-to-tuple conversions and two-branch conditions. With KeyMedic's 214 rules and 56 unhappy-path rules,
and two or three predictions a turn, it was about 8 % of the Rasa server's busy time under `make bench`'s
load (py-spy; docs/bench.md, "Issue 14, round 2").

`PATCHES` (installed by `rasa_plugins.startup.install`) puts `possible_keys` below in its place. Each rule key
is compiled once per policy into its states newest first, each state as "has a previous action" and the
features it requires: a value that must be equal, or `SHOULD_NOT_BE_SET` (must be unset). A falsy rule value
is dropped, since neither branch of Rasa's comparison can fail on it.

Why the answer is exactly Rasa's: the compiled check is the same boolean as `_is_rule_applicable` for every
key, turn and state; and the set is built as Rasa builds it, state after state, by adding the kept keys in the
previous set's order (`set(filter(check, keys))` there, a set comprehension here: both add one key at a time
to a new set), so even its iteration order is the same. That matters: Rasa picks the longest key with `max`,
and among keys of equal length the first one met wins. Only the steps after the set is empty are skipped (an
empty set filtered stays empty).
"""

from __future__ import annotations

import json
from typing import Any

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET
from rasa.shared.core.domain import State

from rasa_plugins import patching

__all__ = ["PATCHES", "possible_keys", "compile_rule"]

_COMPILED_ATTRIBUTE = "_keymedic_compiled_rules"

# One feature a rule state requires: (sub-state type, feature, value, whether it means "must be unset").
_Check = tuple[str, str, Any, bool]
# One rule state: whether it has a previous action, and its checks.
_CompiledState = tuple[bool, tuple[_Check, ...]]


def compile_rule(rule_key: str) -> tuple[_CompiledState, ...]:
    """A rule key's states, newest first, as the checks `_does_rule_match_state` would make."""
    compiled: list[_CompiledState] = []
    for state in reversed(json.loads(rule_key)):
        checks: list[_Check] = []
        for state_type, sub_state in state.items():
            for feature, value in sub_state.items():
                if isinstance(value, list):
                    # JSON turned the tuples of the states into lists; Rasa converts them back to compare.
                    value = tuple(value)
                if not value:
                    continue
                checks.append((state_type, feature, value, value == SHOULD_NOT_BE_SET))
        compiled.append((bool(state.get(PREVIOUS_ACTION)), tuple(checks)))
    return tuple(compiled)


def _applicable(rule: tuple[_CompiledState, ...], turn_index: int, state: State, has_previous: bool) -> bool:
    """`RulePolicy._is_rule_applicable` on a compiled rule."""
    if turn_index >= len(rule):
        return True
    rule_has_previous, checks = rule[turn_index]
    if not rule_has_previous and not has_previous:
        return True
    if not rule_has_previous or not has_previous:
        return False
    for state_type, feature, value, must_be_unset in checks:
        actual = state.get(state_type, {}).get(feature)
        if must_be_unset:
            if actual and actual != SHOULD_NOT_BE_SET:
                return False
        elif actual != value:
            return False
    return True


def possible_keys(self: RulePolicy, lookup: dict[str, str], states: list[State]) -> set[str]:
    """Rasa's `RulePolicy._get_possible_keys`, with each rule compiled once per policy."""
    compiled: dict[str, tuple[_CompiledState, ...]] = self.__dict__.setdefault(_COMPILED_ATTRIBUTE, {})
    for key in lookup:
        if key not in compiled:
            compiled[key] = compile_rule(key)
    keys = set(lookup.keys())
    for turn_index, state in enumerate(reversed(states)):
        if not keys:
            break
        has_previous = bool(state.get(PREVIOUS_ACTION))
        # A set built by adding the kept keys in the previous set's order, as `set(filter(...))` builds it.
        keys = {key for key in keys if _applicable(compiled[key], turn_index, state, has_previous)}
    return keys


PATCHES = (
    patching.Patch(
        RulePolicy,
        "_get_possible_keys",
        possible_keys,
        "2915fd81711e194c6d667728e00bd0e51e9c1c2791a0be14c55f0ef9938f9936",
    ),
)
