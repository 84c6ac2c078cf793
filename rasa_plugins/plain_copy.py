"""A deep copy of plain data (dicts, lists, tuples of strings and numbers), faster than `copy.deepcopy`.

Parse data, dialogue states and a form's trigger message are such data: a few hundred dicts, lists and
floats. `copy.deepcopy` dispatches on every object through its generic machinery; this walks the three
container types directly and hands anything else to `copy.deepcopy`. Like `deepcopy`, it copies a dict or
list reached twice only once, so the copy shares what the original shares: Rasa's parse data has
`intent` and `intent_ranking[0]` as one dict, and Rasa then writes to it through `intent` alone.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

__all__ = ["plain_copy"]

T = TypeVar("T")

_IMMUTABLE = (str, int, float, bool, type(None))


def plain_copy(value: T) -> T:
    """A deep copy of `value` that shares nothing mutable with it and keeps its shared parts shared."""
    copied: T = _copy(value, {})
    return copied


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        found = memo.get(id(value))
        if found is None:
            found = memo[id(value)] = {}
            for key, item in value.items():
                found[key] = _copy(item, memo)
        return found
    if kind is list:
        found = memo.get(id(value))
        if found is None:
            found = memo[id(value)] = []
            found.extend(_copy(item, memo) for item in value)
        return found
    if kind is tuple:
        return tuple(_copy(item, memo) for item in value)
    # deepcopy keeps its own entries in the same memo (id -> copy), so sharing across both is kept too.
    return copy.deepcopy(value, memo)
