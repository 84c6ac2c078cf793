"""`Secret`: a string that never shows itself by accident (DESIGN §5, STYLE "Secrets use a `Secret` type").

`repr`, `str` and formatting are masked; only `.reveal()` hands out the value, so every place that needs the
real secret says so in the code.
"""

from __future__ import annotations

import hmac
from typing import Final, NoReturn

__all__ = ["Secret", "mask"]

# Showing the last 4 characters of a short value (a 6-character passphrase) would give most of it away, so
# only values at least this long show their tail.
_SHOW_TAIL_FROM: Final = 12


def mask(value: str) -> str:
    """`****abcd` for a long value, `****` for a short one: what may be shown back to a user or in a log."""
    stripped = value.strip()
    if len(stripped) < _SHOW_TAIL_FROM:
        return "****"
    return "****" + "".join(c if c.isprintable() else "?" for c in stripped[-4:])


class Secret:
    """A secret string (API secret, passphrase, private key). Masked everywhere except `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The real value. Call it only where the secret is used (signing), never to log or display it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({mask(self._value)!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant time, so comparing secrets leaks nothing through timing.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        # Pickling would copy the value into caches, queues and tracker stores without anyone noticing.
        raise TypeError("a Secret cannot be pickled")
