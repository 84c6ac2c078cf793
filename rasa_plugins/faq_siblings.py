"""An NLU step after DIET: the FAQ's retrieval intents are read as one intent (bot.knowledge.one_faq_reading),
so a question DIET spreads over two of them is neither under the fallback threshold nor "ambiguous" between
two intents that give the same answer; and a close call between removal and an FAQ intent goes to removal, the
safe answer (bot.knowledge.removal_wins_a_close_call). Measured in docs/knowledge.md.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

from bot.knowledge import one_faq_reading, removal_wins_a_close_call
from rasa_plugins.nlu_step import IntentReadingStep


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class FaqSiblings(IntentReadingStep):
    """Gives the best FAQ intent the confidence of all FAQ intents (before the FallbackClassifier)."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            ranking = message.get(INTENT_RANKING_KEY) or []
            pairs = [
                (str(r.get(INTENT_NAME_KEY)), float(r.get(PREDICTED_CONFIDENCE_KEY, 0.0))) for r in ranking
            ]
            merged = removal_wins_a_close_call(one_faq_reading(pairs))
            if merged == pairs:
                continue
            ranked = [
                {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence} for name, confidence in merged
            ]
            message.set(INTENT, ranked[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranked, add_to_output=True)
        return messages
