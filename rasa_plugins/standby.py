"""A standby Rasa: started like any Rasa, it loads the model and then waits, not serving, until promoted.

Rasa loads its agent in a Sanic `before_server_start` listener (`rasa.core.run.load_agent_on_start`), and
Sanic binds the port only after those listeners have returned. The replacement here calls Rasa's own, and
then, in a process started as a standby (`bot.standby.PROMOTE_DIR_ENV` set, by `keymedic run`'s supervisor,
bot/launcher.py), writes `bot.standby.READY_LINE` and waits for its promotion file before returning. So a
standby holds a loaded model and no port; once the serving Rasa has died and the supervisor promotes it, it
binds the port the dead one left and answers at once (docs/reliability.md, "Rasa's start").

Before it waits, it answers one throw-away message through the NLU pipeline and the policies, on a tracker
that is never stored, so the first real turn after the promotion does not pay for the first call's warm-up.
In every other process the replacement is Rasa's function and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rasa.core.run
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.standby import PROMOTE_DIR_ENV, PROMOTED_LINE, READY_LINE, promote_file
from rasa_plugins import patching

__all__ = ["PATCHES", "load_agent_then_wait_if_standby", "on_promoted", "wait_until_promoted"]

logger = logging.getLogger(__name__)

rasa_load_agent_on_start = rasa.core.run.load_agent_on_start
# How often a waiting standby looks for its promotion file: the promotion's share of the user's wait.
POLL_S = 0.05
# What this process starts only once it serves (the metrics port would clash with the serving Rasa's).
on_promoted: list[Callable[[], object]] = []


async def _warm_up(agent: Any) -> None:
    """One parse and one prediction on a tracker that is never stored: the first call's one-off costs."""
    try:
        processor = agent.processor
        parsed = await agent.parse_message("hi")
        events = [
            ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered(parsed["text"], parsed.get("intent"), parsed.get("entities"), parsed),
        ]
        tracker = DialogueStateTracker.from_events("keymedic-standby-warm-up", events, processor.domain.slots)
        processor.predict_next_with_tracker(tracker)
    except Exception:  # a warm-up that fails costs the first turn some time, never the standby
        logger.warning(
            "standby: warm-up failed; the first turn after the promotion pays for it", exc_info=True
        )


async def wait_until_promoted(folder: Path, *, poll_s: float = POLL_S) -> None:
    """Say the standby is ready, then return once `promote.<pid>` appears in `folder` (and remove it)."""
    print(READY_LINE, file=sys.stderr, flush=True)
    mine = promote_file(folder, os.getpid())
    while not mine.exists():
        await asyncio.sleep(poll_s)
    mine.unlink(missing_ok=True)
    print(PROMOTED_LINE, file=sys.stderr, flush=True)
    for start in on_promoted:
        start()


async def load_agent_then_wait_if_standby(
    model_path: str, endpoints: Any, remote_storage: str | None, app: Any, loop: asyncio.AbstractEventLoop
) -> Any:
    """Rasa's `load_agent_on_start`; then, in a standby, the warm-up and the wait for the promotion."""
    agent = await rasa_load_agent_on_start(model_path, endpoints, remote_storage, app, loop)
    folder = os.environ.get(PROMOTE_DIR_ENV, "").strip()
    if folder:
        await _warm_up(agent)
        await wait_until_promoted(Path(folder))
    return agent


PATCHES = (
    patching.Patch(
        rasa.core.run,
        "load_agent_on_start",
        load_agent_then_wait_if_standby,
        "b23e12447febeb64dfe0e78f545c37affae1059858280485b1094707a2704214",
    ),
)
