"""JSON log lines with context ids; secrets of every sandbox key shape scrubbed before any handler writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.observability import logs
from tests.unit.observability.secrets import every_sandbox_key, secret_fragments

KEYS = every_sandbox_key()


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    """A debug logger with two handlers: KeyMedic's JSON one and a library-style plain one."""
    previous_factory = logging.getLogRecordFactory()
    logs.install_scrubbing()
    json_out, plain_out = io.StringIO(), io.StringIO()
    json_handler = logging.StreamHandler(json_out)
    json_handler.setFormatter(logs.JsonFormatter("test"))
    plain_handler = logging.StreamHandler(plain_out)
    plain_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("tests.observability.secrets")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(json_handler)
    logger.addHandler(plain_handler)
    try:
        yield logger, json_out, plain_out
    finally:
        logger.removeHandler(json_handler)
        logger.removeHandler(plain_handler)
        logging.setLogRecordFactory(previous_factory)


@pytest.mark.parametrize(("key_id", "credentials"), KEYS, ids=[k for k, _ in KEYS])
def test_no_secret_of_any_sandbox_key_reaches_any_handler(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO], key_id: str, credentials: dict[str, str]
) -> None:
    logger, json_out, plain_out = captured
    logger.debug("submitted %s", credentials)
    logger.debug(f"secret={credentials['api_secret']} key={credentials['api_key']}")
    logger.info("request body: %s", json.dumps(credentials))
    if credentials.get("passphrase"):
        logger.debug("passphrase is %s", credentials["passphrase"])
    try:
        raise ValueError(f"signing failed for {credentials['api_secret']}")
    except ValueError:
        logger.exception("could not sign")
    written = json_out.getvalue() + plain_out.getvalue()
    assert "[redacted secret]" in written
    for fragment in secret_fragments(credentials):
        assert fragment not in written, f"{key_id}: a secret reached a log"
        assert json.dumps(fragment)[1:-1] not in written


def test_a_line_is_one_json_object_with_the_bound_ids(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, json_out, _ = captured
    with logs.bind(conversation_id="demo", request_id="req-1"):
        logger.info("hello %s", "there")
    logger.warning("outside")
    first, second = (json.loads(line) for line in json_out.getvalue().splitlines())
    assert first["message"] == "hello there"
    assert first["conversation_id"] == "demo" and first["request_id"] == "req-1"
    assert first["level"] == "info" and first["process"] == "test"
    assert first["logger"] == "tests.observability.secrets"
    assert "conversation_id" not in second and second["level"] == "warning"


def test_a_traceback_is_kept_scrubbed_in_the_line(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, json_out, _ = captured
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    line = json.loads(json_out.getvalue())
    assert "Traceback" in line["exc"] and "RuntimeError: boom" in line["exc"]


def test_installing_twice_scrubs_once_and_a_bad_format_string_keeps_the_line(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, json_out, _ = captured
    logs.install_scrubbing()
    logger.info("%d items", "not a number")
    assert "not a number" in json.loads(json_out.getvalue())["message"]


@pytest.mark.parametrize(
    ("offered", "kept"),
    [("abc-123_x.y", True), ("", False), ("has space", False), ("x" * 65, False), (None, False)],
)
def test_a_clients_request_id_is_reused_only_when_plain(offered: str | None, kept: bool) -> None:
    chosen = logs.new_request_id(offered)
    assert (chosen == offered) is kept
    assert 0 < len(chosen) <= 64


def test_install_logging_writes_json_lines_at_the_chosen_level() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    previous_factory = logging.getLogRecordFactory()
    out = io.StringIO()
    try:
        logs.install_logging("unit", level="warning", stream=out)
        logging.getLogger("tests.observability.level").info("not shown")
        logging.getLogger("tests.observability.level").warning("shown")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.setLogRecordFactory(previous_factory)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["shown"]
    assert lines[0]["process"] == "unit"
