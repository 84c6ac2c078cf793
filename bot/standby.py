"""The contract between the supervisor (`bot.launcher`) and a standby Rasa (`rasa_plugins.standby`).

A standby is a second Rasa process that imports everything and loads the model like any Rasa, then, before
it binds its port, waits until it is promoted: the supervisor promotes it the moment the serving Rasa dies, so
the user is answered again as soon as the port is bound, without a start's imports and model load (issue 19,
docs/reliability.md "Rasa's start").

Promotion is a file, `<PROMOTE_DIR_ENV>/promote.<pid>`, not a signal: a signal sent before the process had
installed its handler would kill it, and a file names exactly one process, so a stale one never promotes a
later standby.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PROMOTE_DIR_ENV", "READY_LINE", "PROMOTED_LINE", "promote_file"]

# The folder a standby watches for its promotion file; set only in a standby's environment.
PROMOTE_DIR_ENV = "KEYMEDIC_STANDBY_PROMOTE_DIR"
# What a standby writes to its log (stderr) once loaded, and once promoted.
READY_LINE = "standby: model loaded; waiting to be promoted"
PROMOTED_LINE = "standby: promoted; serving"


def promote_file(folder: Path, pid: int) -> Path:
    """The file whose existence promotes the standby with process id `pid`."""
    return folder / f"promote.{pid}"
