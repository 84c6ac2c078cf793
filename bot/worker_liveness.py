"""The job worker's liveness: a heartbeat file it rewrites while it is well, and the check that reads it.

The worker has no port to probe (issue 19), so it proves it is alive by rewriting a small file every
`BEAT_EVERY_S`. It stops rewriting it when the process is stopped or frozen (SIGSTOP, a deadlock), and also
when one job has been running for longer than `JOB_STUCK_S`: no job of ours legitimately takes that long
(a resync's exchange calls have 8 s deadlines and it refreshes its own claim as it goes; an outbox pass
sends with a timeout of seconds), so a job that does is stuck and only a restart frees its thread. (Jobs are
timed in the consumer's process: with `--worker-type process` a stuck job is not seen, a frozen consumer is.)

Readers call the worker dead when the file is older than `STALE_AFTER_S`: `keymedic run`'s supervisor
(`bot.launcher`), and Kubernetes' exec probe (`python -m bot.worker_liveness PATH`, deploy/kubernetes/
worker.yaml) and compose's healthcheck. This module imports only the standard library, so the probe costs a
bare interpreter start.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["BEAT_EVERY_S", "STALE_AFTER_S", "JOB_STUCK_S", "Heartbeat", "age", "alive", "main"]

BEAT_EVERY_S = 1.0
# Five missed beats: a loaded machine can delay one thread by a second or two, never by five.
STALE_AFTER_S = 5.0
JOB_STUCK_S = 300.0


class Heartbeat:
    """Rewrites `path` every `every_s` seconds from a daemon thread, unless a job is stuck.

    `job_started(key)` and `job_ended(key)` are called around each job (the worker wires them to Huey's
    signals); they are cheap and thread-safe.
    """

    def __init__(
        self,
        path: Path,
        *,
        every_s: float = BEAT_EVERY_S,
        job_stuck_s: float = JOB_STUCK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.every_s = every_s
        self.job_stuck_s = job_stuck_s
        self._clock = clock  # times the jobs; a test passes a fake one
        self._running: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def job_started(self, key: str) -> None:
        with self._lock:
            self._running[key] = self._clock()

    def job_ended(self, key: str) -> None:
        with self._lock:
            self._running.pop(key, None)

    def oldest_job_s(self) -> float:
        """How long the longest-running job has been running (0 when none runs)."""
        with self._lock:
            started = min(self._running.values(), default=None)
        return 0.0 if started is None else self._clock() - started

    def beat(self) -> bool:
        """Rewrite the file now, unless a job is stuck; whether it was written."""
        oldest = self.oldest_job_s()
        if oldest > self.job_stuck_s:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            running = len(self._running)
        body = json.dumps({"pid": os.getpid(), "at": time.time(), "running": running, "oldest_job_s": oldest})
        # Written beside and renamed over: a reader never sees half a file.
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(body)
        os.replace(partial, self.path)
        return True

    def start(self) -> None:
        """Beat once now (so the file exists before the worker says it is ready), then in the background."""
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s * 2)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except OSError:
                pass  # a full or read-only disk: the beat goes stale and the worker is restarted


def age(path: Path) -> float | None:
    """Seconds since the heartbeat file was last rewritten (None when there is none)."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None


def alive(path: Path, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the worker beating into `path` is alive: the file exists and is fresh."""
    seconds = age(path)
    return seconds is not None and seconds <= stale_after_s


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.worker_liveness PATH [STALE_S]`: exit 0 when the worker is alive, else 1 (a probe)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m bot.worker_liveness PATH [STALE_AFTER_S]", file=sys.stderr)
        return 2
    path = Path(args[0])
    stale_after_s = float(args[1]) if len(args) > 1 else STALE_AFTER_S
    seconds = age(path)
    if seconds is None:
        print(f"no heartbeat at {path}", file=sys.stderr)
        return 1
    if seconds > stale_after_s:
        print(f"heartbeat {seconds:.1f} s old (bound {stale_after_s:g} s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
