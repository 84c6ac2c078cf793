"""Satisfaction (CSAT, issue 16): the user's 1-5 answer to "how well did we help you?".

The buttons send the number as the `csat_rating` entity; a typed answer ("4", "4/5", "I'd give it a 5")
carries it in the text. Anything else — no number, two different numbers, a number outside 1-5 — is no
rating: the bot asks again rather than guess. The rating is kept in the conversation's tracker (the
`csat_rating` slot), which `keymedic report` reads.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MIN_RATING", "MAX_RATING", "SLOT", "parse_rating"]

MIN_RATING: Final = 1
MAX_RATING: Final = 5
SLOT: Final = "csat_rating"
# A whole number standing on its own, not a piece of "2FA" or "v3"; "out of 5" and "/5" name the scale.
_NUMBER: Final = re.compile(r"(?<![\w.\-])(\d+)(?![\w.])")
_SCALE: Final = re.compile(r"(?:/|\bout of\s+|\bof\s+)5\b", re.IGNORECASE)


def parse_rating(entity: object, text: str | None) -> int | None:
    """The rating from the entity when it holds one, else from the text; None when there is none."""
    if entity is not None:
        candidate = str(entity).strip()
        if candidate.isdigit() and MIN_RATING <= int(candidate) <= MAX_RATING:
            return int(candidate)
    numbers = {int(n) for n in _NUMBER.findall(_SCALE.sub(" ", text or ""))}
    if len(numbers) != 1:
        return None
    (number,) = numbers
    return number if MIN_RATING <= number <= MAX_RATING else None
