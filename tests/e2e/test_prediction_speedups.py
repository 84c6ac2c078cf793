"""The two prediction speed-ups change no answer, checked on the trained model at every decision point of the
conversation tests and the held-out stories (rasa_plugins/ted_cache.py, rasa_plugins/graph_runner.py).

- The cached TED returns, for every state it has already seen, exactly the confidences its network computes
  for the tracker at hand.
- The planned graph runner parses and predicts exactly as Rasa's dask runner does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.core.agent import Agent
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.constants import PLACEHOLDER_TRACKER
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

from bot.training import ensure_model
from rasa_plugins import graph_runner
from rasa_plugins.ted_cache import CachedTEDPolicy, state_key

pytestmark = [
    pytest.mark.e2e,
    # Loading a model in this process: Rasa's and TensorFlow's own warnings (slot auto-fill, deprecations).
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TESTS = Path(__file__).resolve().parents[1]
STORY_FILES = sorted((TESTS / "conversations").glob("test_*.yml")) + sorted(
    (TESTS / "conversations_heldout").glob("test_*.yml")
)
PARSED = (
    "hi",
    "my kraken wallet stopped syncing",
    "do I need a passphrase for kucoin",
    "sorry, I meant my KuCoin wallet, not Kraken",
    "this is useless, get me a real person",
    "can I just delete the exchange and add it again?",
    "what's the weather like",
)


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    loaded = Agent.load(str(ensure_model()))
    yield loaded


def _ted(agent: Agent) -> tuple[str, CachedTEDPolicy]:
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    for name, node in runner._instantiated_nodes.items():
        if isinstance(node._component, CachedTEDPolicy):
            return name, node._component
    raise AssertionError("the model has no CachedTEDPolicy: config.yml must name rasa_plugins.ted_cache")


def _decision_points(agent: Agent) -> Iterator[DialogueStateTracker]:
    """A tracker before each action of each test story: where the policies are asked."""
    reader = YAMLStoryReader(agent.domain)
    for path in STORY_FILES:
        for step in reader.read_from_file(path):
            events = step.explicit_events(agent.domain)
            for index, event in enumerate(events):
                if isinstance(event, ActionExecuted) and index > 0:
                    before = events[:index]
                    yield DialogueStateTracker.from_events(step.block_name, before, agent.domain.slots)


def _inputs_of(agent: Agent, ted_name: str, tracker: DialogueStateTracker) -> dict[str, Any]:
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    needs = runner._graph_schema.nodes[ted_name].needs
    wanted = {name: node for name, node in needs.items() if name != "tracker"}
    outputs = runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=list(wanted.values()))
    # The runner answers `{node name: output}`.
    return {name: outputs[node] for name, node in wanted.items()}


def test_cached_ted_answers_what_its_network_computes_at_every_story_decision(agent: Agent) -> None:
    ted_name, ted = _ted(agent)
    trackers = list(_decision_points(agent))
    assert len(trackers) > 500
    hits_before = ted.cache_hits
    answers: dict[Any, list[float]] = {}
    for tracker in trackers:
        inputs = _inputs_of(agent, ted_name, tracker)
        network = TEDPolicy.predict_action_probabilities(ted, tracker, **inputs).probabilities
        cached = ted.predict_action_probabilities(tracker, **inputs)
        assert cached.probabilities == network, tracker.sender_id
        # The same states never stand for two different answers: the key holds everything TED reads.
        states = ted._prediction_states(tracker, agent.domain, rule_only_data=inputs.get("rule_only_data"))
        assert answers.setdefault(state_key(states), network) == network, tracker.sender_id
    # The stories share many states, so the cache answered a good part of them: the comparison above covered
    # answers from the cache, not only from the network.
    assert ted.cache_hits - hits_before > len(trackers) // 4


@pytest.fixture
def dask_runner() -> Iterator[None]:
    (patch,) = graph_runner.PATCHES
    was_applied = patch.applied()
    DaskGraphRunner.run = patch.original()  # type: ignore[method-assign]
    try:
        yield
    finally:
        if was_applied:
            patch.apply()
        else:
            DaskGraphRunner.run = patch.original()  # type: ignore[method-assign]


def _parse_all(agent: Agent) -> list[dict[str, Any]]:
    return [asyncio.run(agent.parse_message(text)) for text in PARSED]


def test_the_planned_runner_parses_and_predicts_as_dask_does(agent: Agent, dask_runner: None) -> None:
    trackers = list(_decision_points(agent))[::7]
    target = agent.processor.model_metadata.core_target  # type: ignore[union-attr]
    runner = agent.processor.graph_runner  # type: ignore[union-attr]

    def predictions() -> list[tuple[list[float], str | None]]:
        out = []
        for tracker in trackers:
            prediction = runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=[target])[target]
            out.append((prediction.probabilities, prediction.policy_name))
        return out

    by_dask = (_parse_all(agent), predictions())
    (patch,) = graph_runner.PATCHES
    patch.apply()
    assert patch.applied()
    by_plan = (_parse_all(agent), predictions())
    assert by_plan == by_dask
