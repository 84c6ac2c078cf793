"""rasa_plugins.typed_ratings: a message that is only a rating becomes `inform` with its number, for
certain (no rival left for the FallbackClassifier's ambiguity check); anything else keeps DIET's reading."""

from __future__ import annotations

from rasa.shared.nlu.training_data.message import Message

from rasa_plugins.typed_ratings import TypedRatings


def _parsed(text: str) -> Message:
    message = Message(data={"text": text})
    message.set("intent", {"name": "nlu_fallback", "confidence": 0.6})
    message.set(
        "intent_ranking", [{"name": "greet", "confidence": 0.58}, {"name": "inform", "confidence": 0.0}]
    )
    message.set("entities", [])
    (out,) = TypedRatings().process([message])
    return out


def test_a_typed_rating_is_inform_with_its_number() -> None:
    message = _parsed("4/5")
    assert message.get("intent") == {"name": "inform", "confidence": 1.0}
    entities = [(e["entity"], e["value"], e["start"], e["end"]) for e in message.get("entities")]
    assert entities == [("csat_rating", "4", 0, 1)]
    ranking = message.get("intent_ranking")
    assert ranking[0]["name"] == "inform" and all(r["confidence"] == 0.0 for r in ranking[1:])


def test_a_message_with_more_than_a_number_keeps_the_classifiers_reading() -> None:
    message = _parsed("I have 3 kraken wallets")
    assert message.get("intent")["name"] == "nlu_fallback"
    assert message.get("entities") == []
