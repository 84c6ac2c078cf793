"""The conversation tests again, each story's tracker going through a tracker store between turns (issue 18).

`rasa test core` predicts every story's actions on a tracker it holds in memory, so it never meets a tracker
store. A Rasa server does: at each user message it retrieves the conversation from its store, runs the turn
on what it got back and saves it. This replays every test story that way, once per store, and predicts each
action with the trained model on the tracker the store gave back:

- `rasa`: Rasa's own `SQLTrackerStore`, on SQLite (the reference; `rasa test core`, run before this, is the
  same without a store);
- `windowed`: KeyMedic's store with the window of endpoints.yml (8 turns);
- `windowed-3`: the same with a window of 3 turns, so that every story longer than that is read through
  a cut (no test story is longer than 8 turns, so the configured window alone would never cut one).
  Three turns hold more than the policies' `max_history` of 5 states (config.yml); a smaller window would
  let the policies look past the cut.

Every store must give every story the same predictions as Rasa's own, wrong ones included (the held-out
stories are allowed a few): identical outcomes, not merely the same pass rate. The stories' actions are
never run here (their events come from the story), so what an action reads from a window is the e2e
suite's to check (tests/e2e/conftest.py, `both_stores`); this checks the policies (docs/bench.md).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rasa.core.agent import Agent
from rasa.core.test import _collect_action_executed_predictions, _create_data_generator
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.log_utils import configure_structlog

from bot.config import PROJECT_ROOT
from bot.store.migrate import upgrade_tracker
from rasa_plugins import startup
from rasa_plugins.tracker_store import WindowedSQLTrackerStore

__all__ = ["Outcome", "replay_all", "configured_window"]

STRESS_WINDOW_TURNS = 3


def configured_window() -> int:
    """`window_turns` of endpoints.yml's tracker store."""
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text())
    return int(endpoints["tracker_store"]["window_turns"])


@dataclass(frozen=True)
class Outcome:
    """Per story (file and story name; Rasa generates them in no fixed order): each action's (expected,
    predicted) names."""

    predictions: dict[str, tuple[tuple[str, str], ...]]

    def failed(self) -> list[str]:
        return sorted(name for name, story in self.predictions.items() if any(a != b for a, b in story))


async def _replay(
    story: DialogueStateTracker, agent: Agent, store: TrackerStore, sender: str
) -> tuple[tuple[str, str], ...]:
    """(expected, predicted) for each action of `story`, read back from `store` at each user message."""
    assert agent.processor is not None and agent.domain is not None
    events = list(story.events)
    partial = DialogueStateTracker.from_events(sender, events[:1], agent.domain.slots)
    found: list[tuple[str, str]] = []
    for event in events[1:]:
        if isinstance(event, UserUttered):
            # A turn starts: the server saves the last turn and, at the message, retrieves the conversation.
            await store.save(partial)
            retrieved = await store.retrieve(sender)
            assert retrieved is not None
            partial = retrieved
        if isinstance(event, ActionExecuted):
            result, _, _ = await _collect_action_executed_predictions(
                agent.processor, partial, event, fail_on_prediction_errors=False
            )
            if result.action_targets:
                found.append((result.action_targets[0], result.action_predictions[0]))
        else:
            partial.update(event)
    return tuple(found)


def _stores(agent: Agent, folder: Path) -> dict[str, Callable[[], TrackerStore]]:
    def sqlite(name: str) -> dict[str, Any]:
        path = folder / f"{name}.db"
        upgrade_tracker(f"sqlite:///{path}")  # as `keymedic run` does before Rasa starts
        return {"dialect": "sqlite", "db": str(path)}

    def rasa() -> TrackerStore:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy 2.0 deprecations inside Rasa
            return SQLTrackerStore(domain=agent.domain, **sqlite("rasa"))

    def windowed(turns: int) -> Callable[[], TrackerStore]:
        return lambda: WindowedSQLTrackerStore(
            domain=agent.domain, window_turns=turns, **sqlite(f"windowed-{turns}")
        )

    return {
        "rasa": rasa,
        "windowed": windowed(configured_window()),
        f"windowed-{STRESS_WINDOW_TURNS}": windowed(STRESS_WINDOW_TURNS),
    }


def replay_all(model: Path, story_sets: list[Path]) -> dict[Path, dict[str, Outcome]]:
    """Per set of test stories (a file or a folder of `test_*.yml`), each store's outcome; the model is
    loaded once."""
    startup.install()  # what the Rasa server has (rasa_plugins/run.py)
    # Outside Rasa's command line, structlog prints every policy's debug lines (pages a story): warnings only.
    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))
    return {stories: _replay_set(agent, stories) for stories in story_sets}


def _replay_set(agent: Agent, stories: Path) -> dict[str, Outcome]:
    files = sorted(stories.glob("test_*.yml")) if stories.is_dir() else [stories]
    # Each story's tracker once (replaying reads it, never changes it), for every store.
    trackers: dict[str, DialogueStateTracker] = {}
    for path in files:
        for story in _create_data_generator(str(path), agent).generate_story_trackers():
            key = f"{path.name}: {story.sender_id}"
            assert key not in trackers, f"two stories named {key}"
            trackers[key] = story
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="keymedic-stores-") as folder:
        for name, make in _stores(agent, Path(folder)).items():
            store = make()
            replayed = {
                key: asyncio.run(_replay(story, agent, store, f"{name}-{n}"))
                for n, (key, story) in enumerate(trackers.items())
            }
            if isinstance(store, SQLTrackerStore):
                store.engine.dispose()
            outcomes[name] = Outcome(replayed)
    return outcomes
