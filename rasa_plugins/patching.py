"""Putting KeyMedic's function in place of one of Rasa's, only over the original it was written for.

Rasa 3.6 has no configuration hook for the speed fixes and the failure handling of `rasa_plugins`
(docs/bench.md, docs/reliability.md), so each replaces a function on one of Rasa's classes. A `Patch` names
the function and the SHA-256 of its original source (`inspect.getsource`) in the Rasa KeyMedic was written
against (`RASA_VERSION`). A name says nothing about what a function does: a Rasa release that keeps
`RemoteAction.run` but changes its body would have kept the old guard happy while the replacement dropped
whatever the new body added. So `apply` puts the replacement in only when the original's source is
byte-for-byte the one read when the replacement was written, and otherwise refuses (`RasaChanged`).
`tests/unit/test_rasa_plugins.py` checks the same for every patch, and the installed Rasa's version, so an
upgrade fails the tests before it fails a running bot.

The patches are installed in one place, `rasa_plugins.startup.install` (docs/store.md, "Rasa plug-ins").
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["Patch", "RasaChanged", "RASA_VERSION", "source_sha256"]

# The Rasa every `Patch.original_sha256` was taken from (requirements.lock pins it).
RASA_VERSION = "3.6.21"


class RasaChanged(RuntimeError):
    """A function KeyMedic replaces is not the one its replacement was written for."""


def source_sha256(function: Callable[..., Any]) -> str:
    """The SHA-256 of `function`'s source text, as `inspect.getsource` reads it from Rasa's files."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


@dataclass(frozen=True)
class Patch:
    """`owner.name` becomes `replacement` (a staticmethod when `static`), when the original's source hashes to
    `original_sha256`. `owner` is a class, or a module for a module-level function that the module itself
    looks up by name when it calls it."""

    owner: type | ModuleType
    name: str
    replacement: Callable[..., Any]
    original_sha256: str
    static: bool = False
    classmethod: bool = False  # the original is a classmethod (cls comes first), and so is the replacement

    @property
    def label(self) -> str:
        if isinstance(self.owner, ModuleType):
            return f"{self.owner.__name__}.{self.name}"
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

    def current(self) -> Callable[..., Any]:
        """The function `owner.name` is now (a staticmethod unwrapped)."""
        found = inspect.getattr_static(self.owner, self.name)
        unwrap = isinstance(found, (staticmethod, classmethod))
        function: Callable[..., Any] = found.__func__ if unwrap else found
        return function

    def applied(self) -> bool:
        return self.current() is self.replacement

    def original(self) -> Callable[..., Any]:
        """Rasa's function, whether or not the patch is applied."""
        return _originals.get((self.owner, self.name)) or self.current()

    def original_unchanged(self) -> bool:
        return source_sha256(self.original()) == self.original_sha256

    def apply(self) -> None:
        """Put the replacement in place; nothing to do when it is there already. Raises `RasaChanged`."""
        if self.applied():
            return
        if not self.original_unchanged():
            raise RasaChanged(
                f"{self.label} is not the function KeyMedic's replacement was written for (Rasa "
                f"{RASA_VERSION}); read the new source and the replacement's module, then update both"
            )
        _originals[(self.owner, self.name)] = self.current()
        wrapped: Any = self.replacement
        if self.static:
            wrapped = staticmethod(self.replacement)
        elif self.classmethod:
            wrapped = classmethod(self.replacement)
        setattr(self.owner, self.name, wrapped)


# (owner, name) -> Rasa's function, kept when a patch replaces it.
_originals: dict[tuple[type | ModuleType, str], Callable[..., Any]] = {}
