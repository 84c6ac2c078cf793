"""How much load a run sends: the levels of concurrency, the long conversation, the bounds. Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["Level", "Sizes", "DEFAULT", "QUICK", "parse_levels"]


@dataclass(frozen=True)
class Level:
    """`concurrency` conversations at once; each slot runs `conversations` scripted conversations in turn."""

    concurrency: int
    conversations: int

    def __str__(self) -> str:
        return f"{self.concurrency}x{self.conversations}"


@dataclass(frozen=True)
class Sizes:
    """Everything that decides how long a run takes. Every request goes to 127.0.0.1 only."""

    levels: tuple[Level, ...]
    long_turns: int  # turns of the one long conversation
    long_window: int  # turns averaged at each end of the long conversation
    warmup_conversations: int  # scripted conversations per bot before any figure is taken (excluded)
    phase_timeout_s: float  # a phase stops starting turns after this long; its figures are then marked
    request_timeout_s: float  # one turn that takes longer counts as an error
    # The long conversation's own deadline: it must reach its last turn to say what that turn costs, and
    # on a slow bot 300 turns take longer than a load phase's deadline (the 10:59 run stopped at turn 282).
    long_timeout_s: float = 900.0

    @property
    def warmup_level(self) -> Level:
        """The warm-up: its conversations at once, at most 10 (each one conversation long)."""
        return Level(concurrency=min(self.warmup_conversations, 10), conversations=1)

    def conversations(self, script_turns: int) -> int:
        """How many conversations a run sends one bot whose script has `script_turns` turns: the transcript,
        the warm-up, every level, and the long conversation's repetitions of the script."""
        levels = sum(level.concurrency * level.conversations for level in self.levels)
        long_repetitions = -(-self.long_turns // script_turns)
        return 1 + self.warmup_level.concurrency + levels + long_repetitions

    @property
    def throughput_level(self) -> Level:
        """Throughput is measured at the highest concurrency."""
        return max(self.levels, key=lambda level: level.concurrency)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["levels"] = [str(level) for level in self.levels]
        return data


def parse_levels(text: str) -> tuple[Level, ...]:
    """`"1x30,10x10,50x6"` -> levels (concurrency x conversations per slot), sorted by concurrency."""
    levels: list[Level] = []
    for part in text.split(","):
        concurrency, sep, conversations = part.strip().lower().partition("x")
        if not sep or not concurrency.isdigit() or not conversations.isdigit():
            raise ValueError(f"a level is CONCURRENCYxCONVERSATIONS, like 10x10; got {part.strip()!r}")
        level = Level(int(concurrency), int(conversations))
        if level.concurrency < 1 or level.conversations < 1:
            raise ValueError(f"a level needs at least one conversation slot and one conversation: {level}")
        levels.append(level)
    if len({level.concurrency for level in levels}) != len(levels):
        raise ValueError(f"each concurrency may appear once: {text!r}")
    return tuple(sorted(levels, key=lambda level: level.concurrency))


DEFAULT = Sizes(
    levels=parse_levels("1x30,10x10,50x6"),
    long_turns=300,
    long_window=10,
    warmup_conversations=5,
    phase_timeout_s=150.0,
    request_timeout_s=30.0,
)

QUICK = replace(
    DEFAULT,
    levels=parse_levels("1x3,10x1,50x1"),
    long_turns=30,
    warmup_conversations=2,
    phase_timeout_s=30.0,
    long_timeout_s=90.0,
)
