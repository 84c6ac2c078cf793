"""What the bench's users type: each turn of a script in many wordings, a new combination per conversation.

Why: KeyMedic's Rasa keeps the parse of a text it has seen (`rasa_plugins/parse_cache.py`). Fifty users who
all type the same six texts would measure that cache, not the bot: every parse after the first six would be
free. Real users type their own words for what they came about and much the same words for small talk, so:

- a turn the user describes in their own words (KeyMedic's problem and its two questions) is built from
  parts — an opening, the core sentence, an ending — with hundreds of combinations, and no conversation of a
  run repeats another's (each bot's conversations are numbered across the whole run, warm-up and long
  conversation included);
- a short answer ("hi", "thanks", "no that's all") comes from a handful of common wordings, so it repeats
  across users as it does in real traffic.

Every wording must keep its conversation on its bot's happy path (the same intent as the original script),
so the load measures the same path at every turn; `tests/e2e/test_bench_wording.py` parses each wording
KeyMedic's default run uses with the trained model and checks its intent. The starter bot's wordings are its
own training examples (its NLU knows only those: "I'm feeling sad" comes out as `mood_great`); it keeps no
parse, so which of them a conversation sends does not change its cost. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Turn", "Wording", "WORDINGS", "described", "common"]


@dataclass(frozen=True)
class Turn:
    """One turn of a script: the intent every wording must parse as, and the wordings in a fixed order."""

    intent: str
    wordings: tuple[str, ...]


def described(intent: str, openings: Sequence[str], cores: Sequence[str], endings: Sequence[str]) -> Turn:
    """A turn in the user's own words: every opening x core x ending, with no wording twice."""
    combined = (
        f"{opening}{core}{ending}" for core, opening, ending in itertools.product(cores, openings, endings)
    )
    return Turn(intent, tuple(dict.fromkeys(combined)))


def common(intent: str, *wordings: str) -> Turn:
    """A short answer many users type alike."""
    return Turn(intent, tuple(dict.fromkeys(wordings)))


class Wording:
    """Hands out one script per conversation, numbered across a whole run; deterministic for a seed.

    Conversation n takes, for each turn, the wording at position n of that turn's own shuffled order; a turn
    with fewer wordings than conversations starts its order again. So the first len(wordings) conversations of
    a described turn never repeat a text, and the turns' orders differ, so their combinations vary too.
    """

    def __init__(self, turns: Sequence[Turn], *, seed: int = 14) -> None:
        self.turns = tuple(turns)
        self._orders = []
        for index, turn in enumerate(self.turns):
            order = list(turn.wordings)
            random.Random(seed * 1000 + index).shuffle(order)
            self._orders.append(tuple(order))
        self._next = itertools.count()

    def script(self, conversation: int) -> tuple[str, ...]:
        """The messages of conversation number `conversation`."""
        return tuple(order[conversation % len(order)] for order in self._orders)

    def next_script(self) -> tuple[str, ...]:
        """The next conversation's messages (the counter is shared by every phase of a run)."""
        return self.script(next(self._next))

    def stream(self) -> Iterator[str]:
        """An endless conversation's messages: each repetition of the script in a new conversation's words."""
        while True:
            yield from self.next_script()

    def texts_of_turn(self, position: int, conversations: int) -> list[str]:
        """What turn `position` of the first `conversations` conversations sends, in their order."""
        return [self.script(number)[position] for number in range(conversations)]


_OPENINGS = ("", "hi, ", "hey, ", "hello, ", "so ", "help, ", "ugh, ", "hi there, ")
_ASIDES = ("", "ok, ", "and ", "wait, ", "sorry, ", "also ", "one more thing, ", "right, ", "oh and ")

# KeyMedic's script: greet, a Kraken wallet that stopped syncing (starts the key form), two questions inside
# the form, thanks, and no more questions (DESIGN §3).
KEYMEDIC: tuple[Turn, ...] = (
    common("greet", "hi", "hello", "hey", "hi there", "hello there", "good morning", "hey there", "hiya"),
    described(
        "sync_stopped",
        _OPENINGS,
        (
            "my kraken wallet stopped syncing",
            "kraken isn't syncing anymore",
            "my kraken account won't sync",
            "the kraken connection stopped updating",
            "my kraken sync is broken",
            "my kraken import stopped working",
            "kraken transactions aren't coming in anymore",
            "my kraken wallet shows a sync error",
            "kraken stopped importing my trades",
            "the kraken sync keeps failing",
            "my kraken wallet is not syncing",
            "the kraken wallet fails to sync",
        ),
        (
            "",
            " since yesterday",
            " for a few days",
            " this week",
            " again",
            "!",
            " :(",
            " since last week",
            " today",
        ),
    ),
    described(
        "ask_passphrase",
        _ASIDES,
        (
            "do I need a passphrase",
            "is a passphrase needed",
            "do I have to set a passphrase",
            "does the key need a passphrase",
            "will it ask me for a passphrase",
            "do I need to enter a passphrase too",
            "is there a passphrase to fill in",
            "should I give the key a passphrase",
            "is a passphrase required",
            "does it need a passphrase",
            "do I need a passphrase as well",
        ),
        ("", "?", " for this?", " here?", " with the key?", " btw", " please"),
    ),
    described(
        "ask_permissions",
        _ASIDES,
        (
            "what permissions should the key have",
            "which permissions should I tick",
            "which permissions does the api key need",
            "what rights should I give the key",
            "which permissions are required",
            "what permissions do I select",
            "what permissions does it need",
            "which permissions do I need",
            "what permissions should I enable",
            "which permissions should be enabled",
        ),
        ("", "?", " exactly?", " on the exchange?", " this time?", " btw", " please"),
    ),
    common(
        "thank", "thanks", "thank you", "thanks!", "ok thanks", "great, thanks", "thx", "cheers", "thank you!"
    ),
    common(
        "deny",
        "no that's all",
        "no thanks",
        "nope, that's it",
        "no, that's all",
        "no, all good",
        "no more questions",
        "no that's everything",
        "no, I'm good",
    ),
)

# The starter bot's "sad path 1" (greet, mood_unhappy, affirm), then bot_challenge, mood_great and goodbye,
# each turn in the wordings of its own data/nlu.yml.
STARTER: tuple[Turn, ...] = (
    common(
        "greet", "hi", "hey", "hello", "hello there", "good morning", "hey there", "good evening", "hey dude"
    ),
    common(
        "mood_unhappy",
        "I am sad",
        "my day was horrible",
        "I don't feel very well",
        "I am disappointed",
        "I'm so sad",
        "very sad",
        "unhappy",
        "super sad",
    ),
    common("affirm", "yes", "indeed", "of course", "that sounds good", "correct"),
    common(
        "bot_challenge",
        "are you a bot?",
        "are you a human?",
        "am I talking to a bot?",
        "am I talking to a human?",
    ),
    common(
        "mood_great",
        "I am great",
        "perfect",
        "great",
        "amazing",
        "wonderful",
        "I am feeling very good",
        "so good",
    ),
    common("goodbye", "bye", "goodbye", "see you later", "have a nice day", "bye bye", "see you around"),
)

WORDINGS: dict[str, tuple[Turn, ...]] = {"keymedic": KEYMEDIC, "starter": STARTER}
