"""The second line before the fallback: a TF-IDF search over KeyMedic's knowledge text.

When no intent is confident, the question is matched against every FAQ answer (the article's facts and
KeyMedic's own, in our words, with each exchange's variant), and each exchange's guide (how to make the key,
the CSV backup). Word uni- and bigrams and character n-grams are scored separately (cosine of sublinear
TF-IDF vectors, as scikit-learn's TfidfVectorizer computes them) and averaged, so a typo ("passprase") still
finds its passage. The index is built once per process, on first use, and cached.

Plain Python over an inverted index rather than scikit-learn: the same scores within rounding, without the
library's import (about a second and 70 MiB in the action server, which otherwise never loads it).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from bot.exchange_ids import DISPLAY_NAMES, EXCHANGE_IDS, ExchangeId
from bot.knowledge._faq import answer, load_faq
from bot.knowledge._guides import guide_for
from bot.knowledge._render import csv_backup_steps, new_key_steps

__all__ = [
    "Passage",
    "Hit",
    "SCORE_THRESHOLD",
    "AMBIGUITY_MARGIN",
    "passages",
    "search",
    "confident",
    "KnowledgeIndex",
    "default_index",
]

# The score at or above which the best passage is given as the answer; below it the fallback offers topics.
# Measured on the FAQ phrasings of tests/nlu/heldout.yml against its out-of-scope messages
# (scripts/knowledge_eval.py; docs/knowledge.md has the table).
SCORE_THRESHOLD: Final = 0.30
# Like Rasa's FallbackClassifier's ambiguity_threshold: when the runner-up (another topic) scores almost as
# high, the user picks between them instead of getting the wrong one stated as the answer.
AMBIGUITY_MARGIN: Final = 0.05


@dataclass(frozen=True)
class Passage:
    """One searchable piece of knowledge: an FAQ answer (with its topic) or a guide's text."""

    text: str
    title: str
    topic: str | None = None
    exchange: ExchangeId | None = None


@dataclass(frozen=True)
class Hit:
    """A passage and how close it is to the question (cosine similarity, 0 to 1)."""

    passage: Passage
    score: float


def passages() -> tuple[Passage, ...]:
    """Everything the search can answer with: each FAQ topic's answer, its per-exchange variants, and each
    exchange's guide to making the key and exporting a CSV."""
    found: list[Passage] = []
    for topic in load_faq().values():
        general = answer(topic.topic)
        found.append(Passage(f"{topic.title} {general}", topic.title, topic.topic))
        for exchange in EXCHANGE_IDS:
            text = answer(topic.topic, exchange)
            if text != general:
                found.append(Passage(f"{topic.title} {text}", topic.title, topic.topic, exchange))
    for exchange in EXCHANGE_IDS:
        guide = guide_for(exchange)
        found.append(
            Passage(
                " ".join(new_key_steps(guide)),
                f"How do I make a new {guide.name} API key?",
                exchange=exchange,
            )
        )
        found.append(
            Passage(
                " ".join(csv_backup_steps(guide)),
                f"How do I export a CSV from {guide.name}?",
                exchange=exchange,
            )
        )
    return tuple(found)


class _Vectors:
    """Sublinear TF-IDF vectors, l2-normalised, of one kind of term, with an inverted index for search."""

    def __init__(self, documents: list[list[str]]) -> None:
        frequencies = [Counter(terms) for terms in documents]
        document_frequency: Counter[str] = Counter()
        for counts in frequencies:
            document_frequency.update(counts.keys())
        total = len(documents)
        # scikit-learn's smooth idf: ln((1 + n) / (1 + df)) + 1.
        self._idf = {term: math.log((1 + total) / (1 + df)) + 1 for term, df in document_frequency.items()}
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for index, counts in enumerate(frequencies):
            for term, weight in self._weights(counts).items():
                self._postings[term].append((index, weight))

    def _weights(self, counts: Counter[str]) -> dict[str, float]:
        raw = {t: (1 + math.log(n)) * self._idf[t] for t, n in counts.items() if t in self._idf}
        norm = math.sqrt(sum(w * w for w in raw.values())) or 1.0
        return {term: weight / norm for term, weight in raw.items()}

    def scores(self, terms: list[str], size: int) -> list[float]:
        """The cosine of the query's vector with every document's."""
        result = [0.0] * size
        for term, weight in self._weights(Counter(terms)).items():
            for index, document_weight in self._postings[term]:
                result[index] += weight * document_weight
        return result


class KnowledgeIndex:
    """TF-IDF vectors of the passages, on words and on character n-grams."""

    def __init__(self, items: tuple[Passage, ...]) -> None:
        self._passages = items
        texts = [_normalise(p.text) for p in items]
        self._words = _Vectors([_word_terms(text) for text in texts])
        self._chars = _Vectors([_char_terms(text) for text in texts])

    def search(self, question: str, limit: int = 3, exchange: str | None = None) -> list[Hit]:
        """The best passages for `question`, best first, one per topic (or guide). A passage for another
        exchange than the one named is skipped."""
        text = _normalise(question)
        size = len(self._passages)
        words = self._words.scores(_word_terms(text), size)
        chars = self._chars.scores(_char_terms(text), size)
        scores = [(w + c) / 2 for w, c in zip(words, chars, strict=True)]
        hits: list[Hit] = []
        seen: set[tuple[str | None, str]] = set()
        for index in sorted(range(size), key=lambda i: -scores[i]):
            passage = self._passages[index]
            if passage.exchange is not None and exchange is not None and passage.exchange != exchange:
                continue
            key = (passage.topic, passage.title) if passage.topic is None else (passage.topic, "")
            if key in seen:
                continue
            seen.add(key)
            hits.append(Hit(passage, scores[index]))
            if len(hits) == limit:
                break
        return hits


def confident(hits: list[Hit]) -> Hit | None:
    """The best hit when it is close enough to be given as the answer, and clearly ahead of the next one."""
    if not hits or hits[0].score < SCORE_THRESHOLD:
        return None
    if len(hits) > 1 and hits[0].score - hits[1].score < AMBIGUITY_MARGIN:
        return None
    return hits[0]


@functools.lru_cache(maxsize=1)
def default_index() -> KnowledgeIndex:
    """The process's index over `passages()`, built on first use."""
    return KnowledgeIndex(passages())


def search(question: str, limit: int = 3, exchange: str | None = None) -> list[Hit]:
    """The best passages of the default index for `question` (see `KnowledgeIndex.search`)."""
    return default_index().search(question, limit, exchange)


# Display names as one token each ("Crypto.com" -> "crypto_com"), so an exchange's name matches its passages
# however the user spells the separator.
_NAMES: Final[dict[str, str]] = {
    spelling: exchange
    for exchange in EXCHANGE_IDS
    for spelling in {DISPLAY_NAMES[exchange].lower(), exchange.replace("_", " "), exchange.replace("_", ".")}
    if spelling != exchange
}


# Words too common to tell passages apart (a short list in the spirit of scikit-learn's English one).
_STOP_WORDS: Final = frozenset(
    """a about after again all also am an and any are as at be because been before being but by can
    could did do does doing don for from had has have having he her here hers him his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or other
    our out over own same she should so some such than that the their them then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself""".split()
)
_WORD: Final = re.compile(r"(?u)\b\w\w+\b")


def _word_terms(text: str) -> list[str]:
    words = [w for w in _WORD.findall(text) if w not in _STOP_WORDS]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def _char_terms(text: str) -> list[str]:
    """Character 3- to 5-grams inside each word padded with spaces (scikit-learn's `char_wb`)."""
    terms: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for n in (3, 4, 5):
            terms.extend(_ngrams(padded, n))
    return terms


def _ngrams(padded: str, n: int) -> Iterable[str]:
    if len(padded) <= n:
        return [padded]
    return (padded[i : i + n] for i in range(len(padded) - n + 1))


def _normalise(text: str) -> str:
    folded = " ".join(text.lower().split())
    for spelling, exchange in sorted(_NAMES.items(), key=lambda item: -len(item[0])):
        folded = folded.replace(spelling, exchange)
    return folded
