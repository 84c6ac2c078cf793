"""The shape KeyMedic's untrained NLU steps share: a component after DIET that rereads its ranking.

Each step (faq_siblings, two_part_messages) runs after an intent classifier, needs no training
and keeps no state, so creating one is just constructing it; the step supplies only `process`. Rasa's recipe
registers each step class itself (`DefaultV1Recipe.register` on the subclass).
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier

__all__ = ["IntentReadingStep"]


class IntentReadingStep(GraphComponent, IntentClassifier):
    """An untrained, stateless step after an intent classifier."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [IntentClassifier]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> IntentReadingStep:
        return cls()
