"""TEDPolicy that remembers its answer for dialogue states it has already seen.

Why: TED's prediction was the largest single cost of a KeyMedic turn (about 40 % of the Rasa server's busy
CPU in `make bench`, docs/bench.md "Session 5"), and a turn runs it three to four times (the form's
re-ask, the answer, the listen). Its input is only the last `max_history` dialogue states — intent, slots,
previous action, active loop — so the same states always give the same answer, and conversations walk the
same few paths. This subclass keys a bounded LRU on those states and runs the network only on a miss.

Exactness: TED is asked for a prediction from the featurised states alone when it was trained without user
text (no end-to-end stories). When the model did learn from text, the text of the last message is an input
too, so the cache is bypassed entirely. The cached answer is the same list of confidences, copied per call;
the weights never change after loading (a new model is a new instance with an empty cache).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from rasa.core.featurizers.precomputation import MessageContainerForCoreFeaturization
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT

# About 200 bytes of key and a list of ~130 floats per entry: 4,096 entries stay under 5 MB.
MAX_CACHED_STATES = 4096

StateKey = tuple[tuple[tuple[str, tuple[tuple[str, Any], ...]], ...], ...]


def state_key(states: list[State]) -> StateKey:
    """A hashable, order-insensitive copy of featurizer states (dicts of dicts of tuples and strings)."""
    return tuple(
        tuple(sorted((part, tuple(sorted(_hashable(values).items()))) for part, values in state.items()))
        for state in states
    )


def _hashable(values: dict[str, Any]) -> dict[str, Any]:
    return {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True)
class CachedTEDPolicy(TEDPolicy):
    """TEDPolicy with an LRU of predictions keyed by the dialogue states it reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cached: OrderedDict[StateKey, PolicyPrediction] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    def _reads_user_text(self) -> bool:
        return bool(self.only_e2e or TEXT in (self.fake_features or {}))

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        precomputations: MessageContainerForCoreFeaturization | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        if self.model is None or self._reads_user_text():
            return super().predict_action_probabilities(
                tracker, domain, rule_only_data, precomputations, **kwargs
            )
        key = state_key(self._prediction_states(tracker, domain, rule_only_data=rule_only_data))
        cached = self._cached.get(key)
        if cached is not None:
            self._cached.move_to_end(key)
            self.cache_hits += 1
            return self._prediction(
                list(cached.probabilities),
                is_end_to_end_prediction=cached.is_end_to_end_prediction,
                diagnostic_data=cached.diagnostic_data,
            )
        self.cache_misses += 1
        prediction = super().predict_action_probabilities(
            tracker, domain, rule_only_data, precomputations, **kwargs
        )
        # TED extracts entities only from user text (bypassed above): nothing tracker-specific is kept.
        if not prediction.optional_events:
            self._cached[key] = prediction
            if len(self._cached) > MAX_CACHED_STATES:
                self._cached.popitem(last=False)
        return prediction
