"""`keymedic web` as `make run` starts it: one ready line, /healthz, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.store import migrated_sqlite

pytestmark = pytest.mark.integration

KEYMEDIC = str(Path(sys.executable).parent / "keymedic")


def _environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMEDIC_")}
    env.update(KEYMEDIC_DATABASE_URL=database_url, KEYMEDIC_VAR_DIR=str(tmp_path / "var"))
    return env


def test_keymedic_web_says_when_it_is_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path / "keymedic.db")
    with subprocess.Popen(
        [KEYMEDIC, "web", "--host", "127.0.0.1", "--port", "0"],
        env=_environment(tmp_path, url),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until the app listens (or exits)
            match = re.fullmatch(r"web ready on (http://127\.0\.0\.1:\d+)\n", line)
            assert match, line
            health = httpx.get(f"{match.group(1)}/healthz", timeout=5.0)
            assert health.status_code == 200 and health.headers["cache-control"] == "no-store"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            assert process.stdout.read() == "", "one line on stdout"
        finally:
            if process.poll() is None:
                process.kill()


def test_keymedic_web_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    start = time.monotonic()
    result = subprocess.run(
        [KEYMEDIC, "web", "--port", "0"],
        env=_environment(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "keymedic db upgrade" in result.stdout
    assert time.monotonic() - start < 30
