"""Rasa's models loaded without the throw-away training step (rasa_plugins/fast_load.py) are the very same
models: every weight equal to what Rasa's own load gives, and the same parse of the same messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from bot.training import ensure_model

pytestmark = [
    pytest.mark.integration,
    pytest.mark.rasa_model,
    # Rasa's own warnings on loading this domain (its slot mappings) and TensorFlow's on retracing.
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

MESSAGES = (
    "hi",
    "my kraken key stopped working",
    "what does read-only mean?",
    "kraken",
    "I want to talk to a person",
    "asdkjh qwe",
)


@pytest.fixture
def rasa_load() -> Iterator[None]:
    """Rasa's own `RasaModel.load` for the test, whatever was installed before; put back after."""
    from rasa.utils.tensorflow.models import RasaModel

    from rasa_plugins import fast_load

    before = RasaModel.__dict__["load"]
    RasaModel.load = classmethod(fast_load.rasa_load)  # type: ignore[method-assign,assignment]
    yield
    RasaModel.load = before  # type: ignore[method-assign]


def _tf_models(agent: Any) -> dict[str, Any]:
    from rasa.utils.tensorflow.models import RasaModel

    nodes = agent.processor.graph_runner._instantiated_nodes
    found = {name: getattr(getattr(node, "_component", None), "model", None) for name, node in nodes.items()}
    return {name: model for name, model in found.items() if isinstance(model, RasaModel)}


def test_the_fast_load_gives_the_same_weights_and_answers_as_rasas_own(rasa_load: None) -> None:
    from rasa.core.agent import Agent

    from rasa_plugins import fast_load

    model = ensure_model()
    started = time.monotonic()
    theirs = Agent.load(str(model))
    rasa_s = time.monotonic() - started
    (patch,) = fast_load.PATCHES
    patch.apply()
    assert patch.applied()
    started = time.monotonic()
    ours = Agent.load(str(model))
    fast_s = time.monotonic() - started
    print(f"\n[load] Rasa's own: {rasa_s:.1f} s, without the training step: {fast_s:.1f} s")

    their_models, our_models = _tf_models(theirs), _tf_models(ours)
    assert len(their_models) == 3 and their_models.keys() == our_models.keys()  # DIET, selector, TED
    for name, their_model in their_models.items():
        their_weights = {w.name: w.numpy() for w in their_model.weights}
        our_weights = {w.name: w.numpy() for w in our_models[name].weights}
        assert their_weights.keys() == our_weights.keys(), name
        for weight, value in their_weights.items():
            assert np.array_equal(value, our_weights[weight]), (name, weight)

    async def parses(agent: Any) -> list[dict[str, Any]]:
        return [await agent.parse_message(text) for text in MESSAGES]

    assert asyncio.run(parses(ours)) == asyncio.run(parses(theirs))
