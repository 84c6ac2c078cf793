"""Satisfaction (CSAT, issue 16): the user's 1-5 answer to "how well did we help you?".

The buttons send the number as the `csat_rating` entity of `inform` (`/inform{"csat_rating": "4"}`), the shape
Rasa's forms use for any answer: CSAT adds no intent, so DIET's classes and inputs stay what they were
(docs/knowledge.md, "CSAT's intents and DIET"). A typed answer ("4", "4/5", "I'd give it a 5") carries it in
the text. Anything else — no number, two different numbers, a number outside 1-5 — is no
rating: the bot asks again rather than guess. The rating is kept in the conversation's tracker (the
`csat_rating` slot), which `keymedic report` reads.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = [
    "INTENT",
    "MAX_RATING",
    "MIN_RATING",
    "QUESTION",
    "RETRY",
    "SLOT",
    "TypedRating",
    "offers_rating",
    "parse_rating",
    "rating_buttons",
    "typed_rating",
]

MIN_RATING: Final = 1
MAX_RATING: Final = 5
SLOT: Final = "csat_rating"
# The intent a rating comes as, tapped or typed (rasa_plugins/typed_ratings.py), and its rules' key.
INTENT: Final = "inform"
# The one question, asked by the resync's report and by the web app when a ticket closes (it appends it to the
# conversation as a bot message, so the text lives here, not in domain.yml's responses).
QUESTION: Final = "One quick question: how well did we help you today, from 1 (not at all) to 5 (very well)?"
RETRY: Final = "Please pick a number from 1 to 5, or tap one of the buttons."
# A whole number standing on its own, not a piece of "2FA" or "v3"; "out of 5" and "/5" name the scale.
_NUMBER: Final = re.compile(r"(?<![\w.\-])(\d+)(?![\w.])")
_SCALE: Final = re.compile(r"(?:/|\bout of\s+|\bof\s+)5\b", re.IGNORECASE)


# A message that is nothing but a rating: an optional lead-in ("a", "I'd give it a", "my rating is"), the
# number (a digit or its word), an optional scale ("/5", "out of 5") and "stars", and end punctuation. The
# NLU step (rasa_plugins/typed_ratings.py) reads only these, so "3 or 4", "kraken 2" or "error 5" stay
# DIET's to classify; the words stand for the digits the buttons send.
_WORDS: Final = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_ONLY_A_RATING: Final = re.compile(
    r"""^\s*
    (?:(?:i'?d|i\s+would|i)\s+(?:give|rate)\s+(?:it|you|you\s+guys|that|this)\s+(?:an?\s+)?
      |(?:my\s+)?(?:rating|score)(?:\s+is|\s*:)?\s+
      |an?\s+)?
    (?P<n>\d+|one|two|three|four|five)
    (?:\s*/\s*5|\s+out\s+of\s+(?:5|five))?
    (?:\s+stars?)?
    \s*[.!]*\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


class TypedRating(NamedTuple):
    rating: int
    start: int  # where the number stands in the message (the entity's span)
    end: int


def typed_rating(text: str) -> TypedRating | None:
    """The rating a message consists of ("4", "4/5", "five", "4 stars", "a 3"); None when the message is
    anything more or the number is outside 1-5."""
    match = _ONLY_A_RATING.match(text)
    if match is None:
        return None
    word = match.group("n").lower()
    number = _WORDS[word] if word in _WORDS else int(word)
    if not MIN_RATING <= number <= MAX_RATING:
        return None
    return TypedRating(number, *match.span("n"))


def _payload(rating: int) -> str:
    return f'/{INTENT}{{"{SLOT}": "{rating}"}}'


def rating_buttons() -> list[dict[str, str]]:
    """The five buttons of the question, 1 to 5, each sending its number."""
    return [{"title": str(n), "payload": _payload(n)} for n in range(MIN_RATING, MAX_RATING + 1)]


def offers_rating(buttons: object) -> bool:
    """Whether a bot message's buttons are the rating question's: a typed number is a rating only in answer
    to them (a bare "2" may answer another question)."""
    payloads = {button["payload"] for button in rating_buttons()}
    return isinstance(buttons, list) and any(
        isinstance(b, dict) and b.get("payload") in payloads for b in buttons
    )


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
