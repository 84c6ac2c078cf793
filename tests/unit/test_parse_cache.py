"""The parse cache's own rules, without a model: what it keeps, what it hands out, how it is sized
(rasa_plugins/parse_cache.py; its answers against the pipeline's are checked in
tests/e2e/test_prediction_speedups.py), and the copy it hands out (rasa_plugins/plain_copy.py)."""

from __future__ import annotations

import pytest

from rasa_plugins.parse_cache import DEFAULT_SIZE, ParseCache, configured_size
from rasa_plugins.plain_copy import plain_copy


def _parse(name: str) -> dict[str, object]:
    intent = {"name": name, "confidence": 0.9}
    return {"text": name, "intent": intent, "intent_ranking": [intent, {"name": "other", "confidence": 0.1}]}


def test_the_least_recently_asked_text_goes_first_when_the_cache_is_full() -> None:
    cache = ParseCache(2)
    cache.put("hi", _parse("greet"))
    cache.put("bye", _parse("goodbye"))
    assert cache.get("hi") is not None  # "bye" is now the least recently asked
    cache.put("thanks", _parse("thank"))
    assert len(cache) == 2
    assert cache.get("bye") is None
    assert cache.get("hi") is not None
    assert (cache.hits, cache.misses) == (2, 1)


def test_an_answer_is_a_copy_the_caller_may_change() -> None:
    cache = ParseCache(4)
    stored = _parse("greet")
    cache.put("hi", stored)
    stored["intent"]["name"] = "changed after put"  # type: ignore[index]
    answer = cache.get("hi")
    assert answer == _parse("greet")
    answer["intent"]["full_retrieval_intent_name"] = None  # type: ignore[index]
    assert cache.get("hi") == _parse("greet")


def test_the_copy_keeps_what_the_parse_shares() -> None:
    # Rasa writes `full_retrieval_intent_name` through `intent`; `intent_ranking[0]` is the same dict.
    copied = plain_copy(_parse("faq"))
    assert copied["intent"] is copied["intent_ranking"][0]  # type: ignore[index]
    assert copied == _parse("faq")


@pytest.mark.parametrize(
    ("value", "size"),
    [("", DEFAULT_SIZE), ("0", 0), ("64", 64), ("lots", DEFAULT_SIZE), ("-3", DEFAULT_SIZE)],
)
def test_the_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, size: int) -> None:
    monkeypatch.setenv("KEYMEDIC_PARSE_CACHE", value)
    assert configured_size() == size
