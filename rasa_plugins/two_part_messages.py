"""An NLU step after DIET for two-part messages: a trigger and a question in one message ("my kraken
key stopped working, do I need a passphrase?") is read as the trigger, so the key update starts, and the form
answers the question as it starts (actions/key_update.answer_side_questions). The reading is
bot/side_questions.py's; this adapter only moves it into Rasa's parse. Measured in docs/conversation.md.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.side_questions import two_part_trigger
from rasa_plugins.nlu_step import IntentReadingStep


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class TwoPartMessages(IntentReadingStep):
    """Reads a trigger-plus-question message as its trigger (before the FallbackClassifier, which then sees
    the combined confidence)."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            ranking = message.get(INTENT_RANKING_KEY) or []
            pairs = [
                (str(r.get(INTENT_NAME_KEY)), float(r.get(PREDICTED_CONFIDENCE_KEY, 0.0))) for r in ranking
            ]
            reading = two_part_trigger(str(message.get(TEXT) or ""), pairs)
            if reading is None:
                continue
            top = {INTENT_NAME_KEY: reading.trigger, PREDICTED_CONFIDENCE_KEY: reading.confidence}
            message.set(INTENT, top, add_to_output=True)
            # The question is part of this reading, not a rival to it (FallbackClassifier's ambiguity check).
            merged = {reading.trigger, *reading.questions}
            rest = [r for r in ranking if r.get(INTENT_NAME_KEY) not in merged]
            message.set(INTENT_RANKING_KEY, [top, *rest], add_to_output=True)
        return messages
