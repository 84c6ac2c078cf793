"""An NLU step after DIET for typed CSAT answers (issue 16): a message that is nothing but a 1-5 rating ("4",
"4/5", "five", "4 stars", "a 3") is read as `inform` with the `csat_rating` entity, as the rating buttons
send it. The reading is bot/csat.py's `typed_rating`; this adapter only moves it into Rasa's parse.

Why a fixed reading rather than DIET examples: typed digits as training examples pulled other intents towards
the fallback (held-out intent accuracy 0.960 against the 0.97 gate). Whether a bare number answers the rating
question or another one ("which connection?") is not the NLU's to know, since it cannot see the conversation:
action_record_csat takes a typed rating only when the bot's last message was the rating question
(data/rules/csat.yml), and the forms go on otherwise.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.csat import INTENT as RATING_INTENT
from bot.csat import SLOT, typed_rating
from rasa_plugins.nlu_step import IntentReadingStep


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class TypedRatings(IntentReadingStep):
    """Reads a message that is only a rating as `inform` with its number (before the FallbackClassifier,
    which then sees a certain reading)."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = str(message.get(TEXT) or "")
            reading = typed_rating(text)
            if reading is None:
                continue
            top = {INTENT_NAME_KEY: RATING_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, top, add_to_output=True)
            # Certain, so no rival is close enough for the FallbackClassifier's ambiguity check.
            rest = [
                {**r, PREDICTED_CONFIDENCE_KEY: 0.0}
                for r in message.get(INTENT_RANKING_KEY) or []
                if r.get(INTENT_NAME_KEY) != RATING_INTENT
            ]
            message.set(INTENT_RANKING_KEY, [top, *rest], add_to_output=True)
            entity = {
                ENTITY_ATTRIBUTE_TYPE: SLOT,
                ENTITY_ATTRIBUTE_VALUE: str(reading.rating),
                ENTITY_ATTRIBUTE_START: reading.start,
                ENTITY_ATTRIBUTE_END: reading.end,
                EXTRACTOR: self.__class__.__name__,
            }
            others = [e for e in message.get(ENTITIES) or [] if e.get(ENTITY_ATTRIBUTE_TYPE) != SLOT]
            message.set(ENTITIES, [*others, entity], add_to_output=True)
        return messages
