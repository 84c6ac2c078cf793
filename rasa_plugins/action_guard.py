"""A bounded wait for the action server, and an answer when it fails (issue 19).

Rasa 3.6 waits up to `DEFAULT_REQUEST_TIMEOUT` (5 minutes) for each custom action (rasa/core/actions/action.py
`RemoteAction.run`), and when the call fails it logs the error and carries on with no events and no word to
the user (rasa/core/processor.py `_run_action`): a hung action server meant a user waiting minutes for
nothing, and a dead one meant silence.

`PATCHES` (installed by `rasa_plugins.startup.install`) replace `RemoteAction.run` in the Rasa server's
process with one that

- gives the whole call (connect, send, the action's own work, the answer) `action_timeout_s()` seconds,
  `KEYMEDIC_ACTION_TIMEOUT` (default 9 s: longer than a live key check's 8 s deadline, so a slow exchange
  still gets its answer; short enough that the user hears back within 10 s);
- when the action server is slow, down or answers an error, tells the user once per turn (`APOLOGY`) that
  something went wrong on our side, what to try and that a person can help, then lets Rasa's own handling
  go on: the failed action adds no events, so a form's slots and requested slot stay as they were (the
  form is never half-advanced) and the user can simply send the message again;
- after one failure in a turn, fails the turn's other custom actions at once instead of waiting for each
  (a turn calls a form validator and an action, and both would hit the same dead server);
- and ends that turn: once the action Rasa was running when it failed is logged, Rasa listens
  (`MessageProcessor._run_action` replaced too), instead of predicting on from a state the failed action
  never reached (which answered the apology with a confusing "Sorry, I didn't follow that").

A rejection (`ActionExecutionRejection`, the action server's 400 for a form that does not take the message)
is Rasa's normal flow, not a failure: it passes through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from rasa.core.actions.action import ActionExecutionRejection, ActionListen, RemoteAction
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import MessageProcessor

from rasa_plugins import patching

__all__ = ["APOLOGY", "DEFAULT_ACTION_TIMEOUT_S", "PATCHES", "action_timeout_s"]

logger = logging.getLogger(__name__)

DEFAULT_ACTION_TIMEOUT_S = 9.0

APOLOGY = (
    "Sorry, something went wrong on our side and I could not finish that step. Nothing you told me is "
    "lost. Please send your last message again in a minute. If it keeps happening, ask for a person: our "
    "support team can take it from here."
)

# Set on a turn's output channel (one object per incoming message in every KeyMedic channel) once a custom
# action failed in that turn.
_FAILED = "_keymedic_action_failed"

_original_run = RemoteAction.run
_original_run_action = MessageProcessor._run_action


def action_timeout_s() -> float:
    """`KEYMEDIC_ACTION_TIMEOUT` in seconds (a bad or non-positive value falls back to the default)."""
    try:
        value = float(os.environ.get("KEYMEDIC_ACTION_TIMEOUT", "") or DEFAULT_ACTION_TIMEOUT_S)
    except ValueError:
        return DEFAULT_ACTION_TIMEOUT_S
    return value if value > 0 else DEFAULT_ACTION_TIMEOUT_S


class ActionServerUnavailable(Exception):
    """The action server did not answer this turn's earlier call; this one is not tried."""


async def guarded_run(
    self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any
) -> list[Any]:
    """`RemoteAction.run` within `action_timeout_s()`, telling the user when it fails."""
    if getattr(output_channel, _FAILED, False):
        raise ActionServerUnavailable(self.name())
    try:
        events: list[Any] = await asyncio.wait_for(
            _original_run(self, output_channel, nlg, tracker, domain), timeout=action_timeout_s()
        )
        return events
    except ActionExecutionRejection:
        raise
    except Exception as error:
        # The type only: Rasa's own messages are fine, but an exception may carry the action server's body.
        logger.error(
            "custom action %s failed (%s): the user is told to try again", self.name(), type(error).__name__
        )
        if output_channel is not None:
            try:
                setattr(output_channel, _FAILED, True)
            except AttributeError:
                pass
            await output_channel.send_text_message(tracker.sender_id, APOLOGY)
        raise


async def run_action_then_listen_after_failure(
    self: MessageProcessor, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any
) -> bool:
    """Rasa's `_run_action`; when a custom action failed in this turn, the turn ends there with
    `action_listen`, as after any action that hands back to the user."""
    go_on: bool = await _original_run_action(self, action, tracker, output_channel, nlg, prediction)
    if not go_on or not getattr(output_channel, _FAILED, False):
        return go_on
    listen = PolicyPrediction.for_action_name(self.domain, ActionListen().name(), "keymedic_action_guard")
    await _original_run_action(self, ActionListen(), tracker, output_channel, nlg, listen)
    return False


PATCHES = (
    patching.Patch(
        RemoteAction, "run", guarded_run, "ccabf6f1160d527a157fad5bd285ce69e8221b1bcad23f8a61499b4360a1c17e"
    ),
    patching.Patch(
        MessageProcessor,
        "_run_action",
        run_action_then_listen_after_failure,
        "6d383d0179ef1187639887289168959a5a82f94e6949e4e27bb83b2165094995",
    ),
)
