"""The one place where KeyMedic changes Rasa's own functions: `install()`, called once by the Rasa server's
entry point (`python -m rasa_plugins.run`, bot/launcher.py, deploy/) before Rasa parses its command line.

Rasa 3.6 has no hook for what these do, so each replaces a function on one of Rasa's classes
(`rasa_plugins.patching.Patch`, guarded by a hash of the original's source):

- `action_validation`: `RemoteAction._validate_action_result`, the answer schema checked once, not per answer;
- `action_session`: `EndpointConfig.session`, one kept HTTP session to the action server per event loop;
- `action_guard`: `RemoteAction.run` and `MessageProcessor._run_action`, a bounded wait and an apology;
- `event_types`: `Event.resolve_by_type`, event classes from a table, not a class-tree walk per event;
- `graph_runner`: `DaskGraphRunner.run`, the prediction graph run in a plan made once, not by dask per call;
- `fast_load`: `RasaModel.load`, each TensorFlow model's weights built without a throw-away training step;
- `standby`: `rasa.core.run.load_agent_on_start`, which in a standby Rasa (started by `keymedic run` to take
  over when the serving one dies) waits, model loaded and port unbound, until it is promoted;
- `parse_cache`: `MessageProcessor._parse_message_with_graph`, a text parsed before answered from a cache;
- `past_states`: `DialogueStateTracker.past_states`, a tracker's states built once per events, not per policy;
- `tracker_state`: `DialogueStateTracker.current_state`, the form's trigger message copied without `asdict`;
- `tracker_store`: `FailSafeTrackerStore.save`, `.retrieve`, `.retrieve_full_tracker`, so that a turn the
  windowed store could not save fails loudly instead of being answered from memory and forgotten.

Before this, the tracker store's constructor installed them, as a side effect of Rasa loading a store; any
other process that loaded the store (a test, `rasa shell`) changed Rasa without saying so, and one that did
not load it ran without the failure handling. Now a process has them when, and only when, it calls this.
Everything else KeyMedic gives Rasa goes through Rasa's own configuration: the tracker store, the lock store
(endpoints.yml), the NLU component (config.yml), the channels (credentials.yml).
"""

from __future__ import annotations

import logging

import rasa

from rasa_plugins import (
    action_guard,
    action_session,
    action_validation,
    combined_features,
    event_types,
    fast_load,
    graph_runner,
    parse_cache,
    past_states,
    rule_match,
    standby,
    tracker_state,
    tracker_store,
)
from rasa_plugins.patching import RASA_VERSION, Patch, RasaChanged

__all__ = ["PATCHES", "install", "installed"]

logger = logging.getLogger(__name__)

PATCHES: tuple[Patch, ...] = (
    *action_validation.PATCHES,
    *action_session.PATCHES,
    *action_guard.PATCHES,
    *event_types.PATCHES,
    *graph_runner.PATCHES,
    *fast_load.PATCHES,
    *parse_cache.PATCHES,
    *combined_features.PATCHES,
    *past_states.PATCHES,
    *rule_match.PATCHES,
    *tracker_state.PATCHES,
    *tracker_store.PATCHES,
    *standby.PATCHES,
)


def installed() -> bool:
    """Whether every replacement is in place in this process."""
    return all(patch.applied() for patch in PATCHES)


def install() -> None:
    """Put every replacement in place, or none: raises `RasaChanged` when any original is not the one its
    replacement was written for. Safe to call more than once."""
    if rasa.__version__ != RASA_VERSION:
        logger.warning("Rasa %s, KeyMedic's plug-ins were written for %s", rasa.__version__, RASA_VERSION)
    changed = [patch.label for patch in PATCHES if not patch.applied() and not patch.original_unchanged()]
    if changed:
        raise RasaChanged(
            f"Rasa's {', '.join(changed)} changed since KeyMedic's replacements were written for Rasa "
            f"{RASA_VERSION}: read the new source, then update the replacement and its hash"
        )
    action_validation.prepare()
    for patch in PATCHES:
        patch.apply()
