"""What every channel tells the user when their turn failed on our side (issue 19).

Rasa handles a failing custom action itself (`rasa_plugins.action_guard` tells the user); what reaches a
channel as an exception is the turn itself failing: the tracker store could not save it after its retries
(`rasa_plugins.tracker_store.TrackerStoreUnavailable`), or the lock store or NLU broke. The turn is then not
stored, so whatever the bot answered is forgotten: the user must know the message did not go through and
send it again, never believe it was.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["NOT_SAVED", "NOT_SAVED_CODE", "log_failed_turn"]

logger = logging.getLogger(__name__)

NOT_SAVED_CODE: Final = "not_saved"

NOT_SAVED: Final = (
    "Sorry, your last message was not sent: something went wrong on our side while I was saving it. "
    "Please send it again. If it keeps happening, ask for a person: our support team is there to help."
)


def log_failed_turn(channel: str, error: BaseException) -> None:
    """One log line for a failed turn: the channel and the error's type (its message may quote the user)."""
    logger.error(
        "%s: the turn failed and was not saved (%s); the user is told to resend",
        channel,
        type(error).__name__,
    )
