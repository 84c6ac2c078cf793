"""What the figures were measured on: cores, memory, load, Python, Rasa, and the git commit (read-only)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bot.config import PROJECT_ROOT
from scripts.bench.training import rasa_version

__all__ = ["machine_info", "load_average"]


def _git(*args: str) -> str | None:
    # --no-optional-locks: `git status` must not refresh the index while another engineer commits.
    try:
        completed = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _memory_total_mib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages; other work on the machine shows up here."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    status = _git("status", "--porcelain")
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_mib": _memory_total_mib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "rasa": rasa_version(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }
