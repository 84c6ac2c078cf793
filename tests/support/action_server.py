"""The action server as `keymedic run` starts it (`python -m actions.server`), in a process of its own, for
the tests that need the real entrypoint: started on a free port, and waited for until `/health/live` answers
(with a deadline, failing with the server's log when it exits or never answers)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.config import PROJECT_ROOT
from bot.launcher import free_port

__all__ = ["ActionServer", "running_action_servers"]


@dataclass
class ActionServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def live(self) -> bool:
        """Whether it answers `/health/live`; fails the test with its log when it has exited."""
        try:
            if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if self.process.poll() is not None:
            pytest.fail(f"the action server exited with {self.process.returncode}:\n{self.log.read_text()}")
        return False


@contextmanager
def running_action_servers(
    env: Mapping[str, str], logs: Sequence[Path], *, timeout: float = 90.0
) -> Iterator[list[ActionServer]]:
    """One action server per log file, all started at once with `env`, live when the block starts; each is
    terminated when it ends."""
    servers: list[ActionServer] = []
    try:
        for log in logs:
            port = free_port()
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "actions.server", "--port", str(port)],
                    cwd=PROJECT_ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            servers.append(ActionServer(f"http://127.0.0.1:{port}", process, log))
        deadline = time.monotonic() + timeout
        for server in servers:
            while not server.live():
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"an action server did not start within {timeout:g} s:\n{server.log.read_text()}"
                    )
                time.sleep(0.2)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            server.process.wait(10)
