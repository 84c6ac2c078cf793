"""Putting a faster function in place of one of Rasa's, in the Rasa server's process, once.

Rasa 3.6 has no configuration hook for the speed fixes of `rasa_plugins` (docs/bench.md), so each replaces a
function on Rasa's class. Each does it only for the Rasa it was written against: the function found must
still carry its original qualified name (`Owner.name`), else it is left alone with a warning, and KeyMedic
runs on at Rasa's own speed rather than on a replacement that no longer fits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["replace", "replaced"]

logger = logging.getLogger(__name__)


def replaced(owner: type, name: str, replacement: Callable[..., Any]) -> bool:
    """Whether `owner.name` is `replacement` now."""
    return getattr(owner, name) is replacement


def replace(owner: type, name: str, replacement: Callable[..., Any], *, static: bool = False) -> bool:
    """Put `replacement` in place of `owner.name` (as a staticmethod when `static`); True once it is there.
    Safe to call more than once."""
    if replaced(owner, name, replacement):
        return True
    expected = f"{owner.__name__}.{name}"
    if getattr(getattr(owner, name), "__qualname__", "") != expected:
        logger.warning("Rasa's %s is not the one expected; not replaced", expected)
        return False
    setattr(owner, name, staticmethod(replacement) if static else replacement)
    return True
