"""The turn's speed-ups change no answer, checked on the trained model at every decision point of the
conversation tests and the held-out stories (rasa_plugins/ted_cache.py, graph_runner.py, parse_cache.py,
past_states.py, tracker_state.py, rule_match.py, combined_features.py).

- The cached TED returns, for every state it has already seen, exactly the confidences its network computes
  for the tracker at hand.
- The planned graph runner parses and predicts exactly as Rasa's dask runner does.
- The parse cache answers, for every user text of the tests, the parse the pipeline computes, from the cache.
- The kept past states are the ones Rasa builds, at every step of every story, and every policy predicts the
  same with them.
- The tracker state sent to the action server is the one Rasa's `current_state` gives.
- The compiled rule match finds Rasa's rule keys, in Rasa's order, and RulePolicy predicts the same with it.
- The message's combined features, built once for both classifiers, parse every text as Rasa does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.constants import PLACEHOLDER_TRACKER
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

from bot.training import ensure_model
from rasa_plugins import combined_features, graph_runner, parse_cache, past_states, rule_match, tracker_state
from rasa_plugins.patching import Patch
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


def _stories(agent: Agent) -> Iterator[tuple[str, list[Any]]]:
    reader = YAMLStoryReader(agent.domain)
    for path in STORY_FILES:
        for step in reader.read_from_file(path):
            yield step.block_name, step.explicit_events(agent.domain)


def _user_texts(agent: Agent) -> list[str]:
    texts = {
        event.text
        for _, events in _stories(agent)
        for event in events
        if isinstance(event, UserUttered) and event.text
    }
    return sorted(texts | set(PARSED))


@contextlib.contextmanager
def _unpatched(patch: Patch) -> Iterator[None]:
    """Rasa's own function in `patch`'s place for the block, then the patch again if it was applied."""
    was_applied = patch.applied()
    setattr(patch.owner, patch.name, patch.original())
    try:
        yield
    finally:
        if was_applied:
            patch.apply()


def _assert_same_with_and_without(patch: Patch, compute: Callable[[], Any]) -> None:
    """`compute()` gives the same with Rasa's function in the patch's place as with the patch."""
    with _unpatched(patch):
        by_rasa = compute()
    patch.apply()
    assert compute() == by_rasa


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


def test_the_parse_cache_answers_what_the_pipeline_parses_for_every_text_of_the_tests(agent: Agent) -> None:
    processor = agent.processor
    assert processor is not None
    (patch,) = parse_cache.PATCHES
    patch.apply()
    texts = _user_texts(agent)
    assert len(texts) > 150
    processor.__dict__.pop("_keymedic_parse_cache", None)  # a fresh cache for this processor
    cache = parse_cache.cache_of(processor)
    assert cache is not None, "KeyMedic's pipeline must be one the parse cache may serve"

    def parse(text: str) -> dict[str, Any]:
        return asyncio.run(processor.parse_message(UserMessage(text, sender_id="parse-cache")))

    with _unpatched(patch):
        by_pipeline = [parse(text) for text in texts]
    first = [parse(text) for text in texts]
    hits_before = cache.hits
    second = [parse(text) for text in texts]
    assert first == by_pipeline
    assert second == by_pipeline
    assert cache.hits - hits_before == len(texts)
    # An answer is the caller's own: changing it changes neither the cache nor the next answer.
    second[0]["intent"]["name"] = "changed"
    second[0]["intent_ranking"].clear()
    assert parse(texts[0]) == by_pipeline[0]


def test_the_parse_cache_stays_off_for_a_component_it_does_not_know_and_at_size_0(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = agent.processor
    assert processor is not None
    known = parse_cache.CONTEXT_FREE
    assert parse_cache.context_free(processor)
    monkeypatch.delitem(processor.__dict__, "_keymedic_parse_cache", raising=False)
    monkeypatch.setattr(parse_cache, "CONTEXT_FREE", known - {DIETClassifier})
    assert not parse_cache.context_free(processor)
    assert parse_cache.cache_of(processor) is None
    # Turned off by its size, too.
    processor.__dict__.pop("_keymedic_parse_cache")
    monkeypatch.setattr(parse_cache, "CONTEXT_FREE", known)
    monkeypatch.setenv("KEYMEDIC_PARSE_CACHE", "0")
    assert parse_cache.cache_of(processor) is None


def _as_run_by_rules(events: list[Any]) -> list[Any]:
    """The story's events with every other action but `action_listen` marked as a hidden rule turn, as the
    processor marks an action a rule-only prediction chose (story files never do), so that the states
    without rule turns skip turns and substitute the user part as they do in a live conversation."""
    marked = []
    actions = 0
    for event in events:
        if isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN_NAME:
            actions += 1
            if actions % 2:
                event = copy.copy(event)
                event.hide_rule_turn = True
        marked.append(event)
    return marked


def test_kept_past_states_are_rasas_at_every_step_of_every_story(agent: Agent) -> None:
    (patch,) = past_states.PATCHES
    patch.apply()
    original = patch.original()
    rule_only = agent.processor.graph_runner.run(  # type: ignore[union-attr]
        inputs={PLACEHOLDER_TRACKER: DialogueStateTracker("x", [])}, targets=["rule_only_data_provider"]
    )["rule_only_data_provider"]
    # Rule-only slots and loops as a model whose rules name some that its stories do not would have them
    # (this model has none), so that removing them from the states without rule turns is exercised too.
    some_rule_only = {
        "rule_only_slots": ["key_status", "checklist_outcome"],
        "rule_only_loops": ["key_update_form"],
    }
    # Both kinds (ignore_rule_only_turns False and True) come from one replay: each asked first, and with
    # and without the rule-only data.
    arguments = [
        (False, False, None),
        (False, True, rule_only),
        (False, False, rule_only),
        (True, True, None),
        (True, False, None),
        (False, True, some_rule_only),
        (False, False, some_rule_only),  # from the same replay as the line above: untouched by its removals
    ]
    steps = hidden = 0
    for name, story_events in _stories(agent):
        for events in (story_events, _as_run_by_rules(story_events)):
            # One tracker that grows event by event, as the processor's does: the kept states must follow it.
            tracker = DialogueStateTracker(name, agent.domain.slots)
            for event in events:
                tracker.update(event, agent.domain)
                hidden += bool(getattr(event, "hide_rule_turn", False))
                for omit, ignore, rule_only_data in arguments:
                    expected = original(tracker, agent.domain, omit, ignore, rule_only_data)
                    assert tracker.past_states(agent.domain, omit, ignore, rule_only_data) == expected, name
                    again = tracker.past_states(agent.domain, omit, ignore, rule_only_data)
                    assert again == expected, name
                    again.clear()  # the caller's list: the kept one is untouched
                steps += 1
    assert steps > 2000 and hidden > 500


def test_every_policy_predicts_the_same_with_the_kept_past_states(agent: Agent) -> None:
    (patch,) = past_states.PATCHES
    trackers = list(_decision_points(agent))[::3]
    target = agent.processor.model_metadata.core_target  # type: ignore[union-attr]
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    policies = [name for name in runner._graph_schema.nodes if name.startswith("run_") and "Policy" in name]
    assert len(policies) >= 3

    def predictions() -> list[Any]:
        out = []
        for tracker in trackers:
            results = runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=[*policies, target])
            out.append(
                [(p.probabilities, p.policy_name, p.events, p.hide_rule_turn) for p in results.values()]
            )
        return out

    _assert_same_with_and_without(patch, predictions)


def test_the_tracker_state_for_the_action_server_is_rasas(agent: Agent) -> None:
    (patch,) = tracker_state.PATCHES
    patch.apply()
    with_loop = [tracker for tracker in _decision_points(agent) if tracker.active_loop]
    assert len(with_loop) > 100
    for tracker in with_loop:
        ours = tracker.current_state(EventVerbosity.ALL)
        assert ours == patch.original()(tracker, EventVerbosity.ALL)
        # A copy, as dataclasses.asdict makes: the tracker's trigger message is not the one handed out.
        trigger = ours["active_loop"]["trigger_message"]
        if trigger:
            trigger["intent"] = {"name": "changed"}
            assert tracker.active_loop.trigger_message["intent"] != {"name": "changed"}  # type: ignore[union-attr]


def _rule_policy(agent: Agent) -> RulePolicy:
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    for node in runner._instantiated_nodes.values():
        if isinstance(node._component, RulePolicy):
            return node._component
    raise AssertionError("the model has no RulePolicy")


def test_the_compiled_rule_match_keeps_rasas_keys_in_rasas_order_at_every_decision(agent: Agent) -> None:
    (patch,) = rule_match.PATCHES
    patch.apply()
    policy = _rule_policy(agent)
    rule_only = policy._get_rule_only_data()
    lookups = [policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH]]
    checked = matched = 0
    for tracker in _decision_points(agent):
        for use_text in (False, True):
            states = policy._prediction_states(tracker, agent.domain, use_text, rule_only_data=rule_only)
            for lookup in lookups:
                ours = policy._get_possible_keys(lookup, states)
                # The order too: Rasa takes the first of the longest keys it meets.
                assert list(ours) == list(patch.original()(policy, lookup, states)), tracker.sender_id
                checked += 1
                matched += bool(ours)
    assert checked > 2000 and matched > 500


def test_the_rule_policy_predicts_the_same_with_the_compiled_rule_match(agent: Agent) -> None:
    (patch,) = rule_match.PATCHES
    policy = _rule_policy(agent)
    trackers = list(_decision_points(agent))

    def predictions() -> list[Any]:
        out = []
        for tracker in trackers:
            prediction = policy.predict_action_probabilities(
                tracker, agent.domain, rule_only_data=policy._get_rule_only_data()
            )
            out.append((prediction.probabilities, prediction.events, prediction.action_metadata))
        return out

    _assert_same_with_and_without(patch, predictions)


def test_the_combined_features_built_once_parse_every_text_of_the_tests_as_rasa_does(agent: Agent) -> None:
    processor = agent.processor
    assert processor is not None
    (cache_patch,) = parse_cache.PATCHES
    (patch,) = combined_features.PATCHES
    texts = _user_texts(agent)

    def parse(text: str) -> dict[str, Any]:
        return asyncio.run(processor.parse_message(UserMessage(text, sender_id="combined-features")))

    with _unpatched(cache_patch):  # every text through the pipeline, both times
        _assert_same_with_and_without(patch, lambda: [parse(text) for text in texts])
