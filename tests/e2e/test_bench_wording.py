"""The bench's varied wordings keep KeyMedic on its happy path (scripts/bench/wording.py).

`make bench` measures throughput on users who type their own words, so that the parse cache is not all it
measures; that is only a fair load if every wording means what the original script meant. Each text a
default-size run sends is parsed by the running server and must come out as its turn's intent.
"""

from __future__ import annotations

import pytest

from scripts.bench import wording
from scripts.bench.plan import DEFAULT
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e


def _entities(parsed: dict[str, object]) -> set[tuple[object, object]]:
    entities = parsed.get("entities") or []
    assert isinstance(entities, list)
    return {(entity.get("entity"), entity.get("value")) for entity in entities}


# A few wordings of a thousand may be misread, as a real user's are: that conversation leaves the happy path
# and costs about what it would have. More than that, and the load no longer measures the path it names.
MIN_ON_PATH = 0.97


def test_every_turn_of_a_default_run_parses_as_its_intent(rasa_stack: RasaStack) -> None:
    script = wording.Wording(wording.KEYMEDIC)
    conversations = DEFAULT.conversations(len(wording.KEYMEDIC))
    report: list[str] = []
    for position, turn in enumerate(script.turns):
        texts = sorted(set(script.texts_of_turn(position, conversations)))
        misread: list[str] = []
        for text in texts:
            parsed = rasa_stack.parse(text)
            intent = parsed["intent"]
            assert isinstance(intent, dict)
            if intent.get("name") != turn.intent:
                misread.append(f"  {text!r}: {intent.get('name')} ({intent.get('confidence', 0):.2f})")
            elif "kraken" in text and ("exchange", "kraken") not in _entities(parsed):
                misread.append(f"  {text!r}: no exchange entity kraken")
        on_path = 1 - len(misread) / len(texts)
        report.append(f"{turn.intent}: {len(texts)} texts, {on_path:.3f} on path\n" + "\n".join(misread))
        assert on_path >= MIN_ON_PATH, "\n".join(report)
    print("\n".join(report))
