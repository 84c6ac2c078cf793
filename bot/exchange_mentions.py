"""Which exchange a free-text message means: exchange names found in the text (typos included), the ones the
user negates, and the one they intend.

Rasa's `RegexEntityExtractor` only tags the spellings of `data/nlu/exchanges.yml`, and for "sorry, I meant my
KuCoin wallet, not Kraken" it tags both names. This module reads the message the way a person would: a name
after "not", "instead of", "rather than" is the one being corrected; a name after "meant" or "actually" is
the one intended; a misspelt name ("kucoinn", "coinbsae", "binanse us") is matched by Damerau-Levenshtein
distance against the ids, display names and aliases of `bot.exchange_ids`, and is *confident* only when the
typo is small and keeps the first letter — otherwise the caller should ask ("Did you mean KuCoin?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bot.exchange_ids import ALIASES, DISPLAY_NAMES, EXCHANGE_IDS, ExchangeId

__all__ = ["Mention", "Resolution", "damerau_levenshtein", "find_mentions", "intended_exchange"]


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# Aliases that are everyday words or too short to find inside a sentence ("bus", "gate", "cb"): they stay
# valid as a whole answer to "which exchange?" (bot.exchange_ids.normalize_exchange), not inside a sentence.
# "active trader" (Gemini's old product) is how many people describe themselves.
_NOT_IN_SENTENCES: Final = frozenset({"bus", "gate", "cb", "kc", "cro", "bnb", "activetrader"})

_NAMES: Final[dict[str, ExchangeId]] = {
    **{_fold(name): _id for _id, name in DISPLAY_NAMES.items()},
    **{_id.replace("_", ""): _id for _id in EXCHANGE_IDS},
    **{alias: _id for alias, _id in ALIASES.items() if alias not in _NOT_IN_SENTENCES},
}

# Only names this long get fuzzy matching: shorter ones are one letter away from ordinary words.
_FUZZY_MIN_LENGTH: Final = 5
# Ordinary words one or two edits from an exchange name ("finance" ~ "binance"); never read as a typo.
_ORDINARY_WORDS: Final = frozenset({"finance"})

_WORD: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.'’-]*")
# A name right after these words is the one being corrected away from ("not Kraken", "instead of Kraken").
# ("no" is not one: "no wait, KuCoin" and "no, KuCoin" name the exchange meant.)
_NEGATORS: Final = frozenset({"not", "isn't", "isnt", "wasn't", "wasnt", "don't", "dont", "never"})
_NEGATING_PHRASES: Final = (("instead", "of"), ("rather", "than"), ("other", "than"))
# A name after these words is the one the user means ("I meant KuCoin", "actually it's KuCoin").
_INTENT_MARKERS: Final = frozenset({"meant", "mean", "actually", "instead", "correction", "rather", "switch"})
# Words that close the scope of a negation: "not Kraken, but KuCoin" / "not kraken it's kucoin".
_CLAUSE_BREAKS: Final = frozenset({"but", "it's", "its", "i", "it", "is", "the", "one", "was"})
# How far back a negator reaches ("not my old Kraken" is three words back).
_NEGATION_REACH: Final = 3


@dataclass(frozen=True)
class Mention:
    """One exchange named in a message: which, where (word positions), how sure, and whether negated."""

    exchange: ExchangeId
    typed: str
    first_word: int
    last_word: int
    distance: int
    confident: bool
    negated: bool = False
    marked: bool = False


@dataclass(frozen=True)
class Resolution:
    """The exchange a message means. `confident` is False for a guess the user should confirm."""

    exchange: ExchangeId
    confident: bool
    typed: str


@dataclass(frozen=True)
class _Word:
    text: str
    folded: str
    clause: int  # punctuation before this word starts a new clause


def damerau_levenshtein(a: str, b: str) -> int:
    """Edit distance where a swap of two neighbouring letters ("coinbsae") counts as one edit."""
    rows = len(a) + 1
    cols = len(b) + 1
    d = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        d[i][0] = i
    for j in range(cols):
        d[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def _allowed_distance(name: str) -> int:
    return 0 if len(name) < _FUZZY_MIN_LENGTH else 1 if len(name) < 8 else 2


def _closest(folded: str) -> tuple[ExchangeId, int, bool] | None:
    """The nearest exchange name within its allowed distance: (id, distance, confident)."""
    if folded in _NAMES:
        return _NAMES[folded], 0, True
    if len(folded) < _FUZZY_MIN_LENGTH or folded in _ORDINARY_WORDS:
        return None
    best: tuple[int, str] | None = None
    for name in _NAMES:
        if len(name) < _FUZZY_MIN_LENGTH or abs(len(name) - len(folded)) > 2:
            continue
        distance = damerau_levenshtein(folded, name)
        if distance <= _allowed_distance(name) and (best is None or distance < best[0]):
            best = (distance, name)
    if best is None:
        return None
    distance, name = best
    # One slip that keeps the first letter is a typo; anything more is a guess to confirm.
    confident = distance == 1 and folded[0] == name[0]
    return _NAMES[name], distance, confident


def _words(text: str) -> list[_Word]:
    words: list[_Word] = []
    clause = 0
    position = 0
    for match in _WORD.finditer(text):
        between = text[position : match.start()]
        if any(mark in between for mark in ",;:!?()") or re.search(r"\.(\s|$)", between):
            clause += 1
        raw = match.group().rstrip(".'’-")
        words.append(_Word(text=raw, folded=_fold(raw), clause=clause))
        position = match.end()
    return words


def find_mentions(text: str) -> list[Mention]:
    """Every exchange named in `text`, in order, longest names first ("binance us" before "binance")."""
    words = _words(text)
    mentions: list[Mention] = []
    i = 0
    while i < len(words):
        found = _exact_at(words, i) or _fuzzy_at(words, i)
        if found is None:
            i += 1
            continue
        width, typed, (exchange, distance, confident) = found
        mentions.append(
            Mention(
                exchange=exchange,
                typed=typed,
                first_word=i,
                last_word=i + width - 1,
                distance=distance,
                confident=confident,
                negated=_is_negated(words, i),
                marked=_is_marked(words, i),
            )
        )
        i += width
    return mentions


def _exact_at(words: list[_Word], i: int) -> tuple[int, str, tuple[ExchangeId, int, bool]] | None:
    """The longest exact name starting at word `i` (up to three words: "coinbase advanced trade")."""
    for width in (3, 2, 1):
        span = words[i : i + width]
        # A name never spans a comma.
        if len(span) < width or len({w.clause for w in span}) > 1:
            continue
        folded = "".join(w.folded for w in span)
        if folded in _NAMES:
            return width, " ".join(w.text for w in span), (_NAMES[folded], 0, True)
    return None


def _fuzzy_at(words: list[_Word], i: int) -> tuple[int, str, tuple[ExchangeId, int, bool]] | None:
    """A misspelt name at word `i`: two words that fold into one name ("binanse us") before one word.

    Two words only when neither is a name on its own, so "a kucoin" stays "kucoin"."""
    pair = words[i : i + 2]
    if len(pair) == 2 and pair[0].clause == pair[1].clause and not any(w.folded in _NAMES for w in pair):
        match = _closest(pair[0].folded + pair[1].folded)
        if match is not None:
            return 2, f"{pair[0].text} {pair[1].text}", match
    match = _closest(words[i].folded)
    return (1, words[i].text, match) if match is not None else None


def _before(words: list[_Word], index: int) -> list[str]:
    """The words of the same clause before `index`, nearest first."""
    clause = words[index].clause
    return [w.text.lower() for w in reversed(words[:index]) if w.clause == clause]


def _is_negated(words: list[_Word], index: int) -> bool:
    before = _before(words, index)
    for pair in _NEGATING_PHRASES:
        if tuple(reversed(before[:2])) == pair:
            return True
    for distance, word in enumerate(before[:_NEGATION_REACH]):
        if word in _NEGATORS:
            return True
        if distance > 0 and word in _CLAUSE_BREAKS:
            return False
    return False


def _is_marked(words: list[_Word], index: int) -> bool:
    return any(word in _INTENT_MARKERS for word in _before(words, index)) and not _is_negated(words, index)


def intended_exchange(text: str, current: str | None = None) -> Resolution | None:
    """The exchange `text` means, or None when it names none (or only negates names).

    Among the names not negated, one the user marked ("I meant …", "actually …") wins; then one other than
    `current` (the exchange the conversation is already about: naming another is the change of mind); then
    the last one named."""
    candidates = [m for m in find_mentions(text) if not m.negated]
    if not candidates:
        return None
    marked = [m for m in candidates if m.marked]
    others = [m for m in candidates if m.exchange != current]
    chosen = (marked or others or candidates)[-1]
    return Resolution(exchange=chosen.exchange, confident=chosen.confident, typed=chosen.typed)
