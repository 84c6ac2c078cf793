"""Structured logs: JSON lines with the conversation and request ids, secrets scrubbed in one place.

Every KeyMedic process calls `install_logging(process)` first thing (the web app, the sandbox, the worker,
the action server, `keymedic sync` and `report`); Rasa gets the same through its `--logging-config-file`
(`rasa_logging.yml` next to this module, which builds `rasa_json_handler`).

**The one place secrets are scrubbed** is `scrub_record`, run by the log-record factory this module installs:
every record any logger of the process creates (ours, Rasa's, Sanic's, aiohttp's, httpx's) has its message
rendered and passed through `bot.redaction.redact` (the same detector the channels use on chat messages), and
its traceback rendered and scrubbed, *before* any handler sees it. So whatever handler a library adds later
(Rasa adds a coloured console handler after reading its logging config) writes only scrubbed text. Records
made before the factory was installed are scrubbed by `JsonFormatter` through the same function.

Each line is one JSON object:

    {"ts": "2026-11-26T12:00:00.123Z", "level": "info", "process": "web", "logger": "bot.web.access",
     "message": "...", "conversation_id": "demo", "request_id": "5f0c…", "exc": "Traceback …"}

`conversation_id` and `request_id` come from context variables (`bind`), set per request by the web app's
middleware, the action server (from the action call's `sender_id`) and the channels (from the message).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Final

from bot.redaction import redact

__all__ = [
    "CONVERSATION_ID",
    "REQUEST_ID",
    "JsonFormatter",
    "bind",
    "new_request_id",
    "scrub",
    "scrub_record",
    "install_scrubbing",
    "install_logging",
    "rasa_json_handler",
    "RASA_LOGGING_CONFIG",
    "LEVELS",
]

CONVERSATION_ID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "keymedic_conversation_id", default=None
)
REQUEST_ID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "keymedic_request_id", default=None
)
LEVELS: Final = ("debug", "info", "warning", "error")
RASA_LOGGING_CONFIG: Final = Path(__file__).with_name("rasa_logging.yml")
# A request id from a client is echoed only when it looks like one (it lands in every log line).
_MAX_REQUEST_ID: Final = 64
_SCRUBBED: Final = "keymedic_scrubbed"
_process_name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"


def scrub(text: str) -> str:
    """`text` with every secret-looking value replaced (`bot.redaction`)."""
    return redact(text).text


def new_request_id(offered: str | None = None) -> str:
    """The request id to use: the caller's (`X-Request-ID`) when it is short and plain, else a new one."""
    if offered and len(offered) <= _MAX_REQUEST_ID and all(c.isalnum() or c in "-_." for c in offered):
        return offered
    return uuid.uuid4().hex


@contextmanager
def bind(*, conversation_id: str | None = None, request_id: str | None = None) -> Iterator[None]:
    """Within the block, log lines carry these ids (asyncio tasks started inside inherit them)."""
    tokens = []
    if conversation_id is not None:
        tokens.append((CONVERSATION_ID, CONVERSATION_ID.set(conversation_id)))
    if request_id is not None:
        tokens.append((REQUEST_ID, REQUEST_ID.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Render the record's message and traceback and scrub them, once; stamp the context ids on it."""
    if getattr(record, _SCRUBBED, False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not lose the line (nor raise in the caller)
        message = f"{record.msg!s} {record.args!r}"
    record.msg = scrub(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    if not hasattr(record, "conversation_id"):
        record.conversation_id = CONVERSATION_ID.get()
    if not hasattr(record, "request_id"):
        record.request_id = REQUEST_ID.get()
    setattr(record, _SCRUBBED, True)
    return record


_installed_factory: Any = None


def install_scrubbing() -> None:
    """Make every log record of this process scrubbed at creation (idempotent)."""
    global _installed_factory
    current = logging.getLogRecordFactory()
    if current is _installed_factory:
        return
    previous = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(previous(*args, **kwargs))

    _installed_factory = factory
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        scrub_record(record)
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self.process or _process_name,
            "logger": record.name,
            "message": record.msg if isinstance(record.msg, str) else str(record.msg),
        }
        for key in ("conversation_id", "request_id"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def _level(level: str | None) -> int:
    if level is None:
        from bot.config import load_settings

        level = load_settings().log_level
    return logging.getLevelName(level.upper()) if level.lower() in LEVELS else logging.INFO


def install_logging(process: str, *, level: str | None = None, stream: IO[str] | None = None) -> None:
    """Log JSON lines to `stream` (stderr) at `level` (`KEYMEDIC_LOG_LEVEL`), secrets scrubbed.

    Replaces the root logger's handlers, so call it before anything else logs.
    """
    global _process_name
    _process_name = process
    install_scrubbing()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level))


def rasa_json_handler(filename: str | None = None) -> logging.Handler:
    """The handler Rasa's logging config builds: JSON lines appended to `var/logs/rasa.jsonl`.

    A file, not stderr: Rasa replaces any stdout/stderr handler with its coloured console handler right after
    applying the config, so JSON on stderr would be lost; the console text it writes instead is scrubbed all
    the same, because building this handler installs the scrubbing record factory in the Rasa process.
    """
    global _process_name
    _process_name = "rasa"
    install_scrubbing()
    if filename is None:
        from bot.config import load_settings

        filename = str(load_settings().var_dir / "logs" / "rasa.jsonl")
    Path(filename).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(filename, encoding="utf-8")
    handler.setFormatter(JsonFormatter("rasa"))
    logging.getLogger().setLevel(_level(None))
    return handler
