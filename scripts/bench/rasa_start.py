"""Where a Rasa start's time goes (issue 19: a killed Rasa back within 10 s): `python -m
scripts.bench.rasa_start [--runs 3] [--standby]`.

Starts the Rasa process exactly as `keymedic run` does (`bot.launcher.local_services`), under `python -X
importtime`, in a throw-away state folder, and reports for each start the seconds from the process's start to:
imports done (the sum of the top-level imports' cumulative times), `Loading model` and the model loaded
(Rasa's own log lines, `var/logs/rasa.jsonl`), the port answering `GET /status` with the model, and the first
answered `/webhooks/rest/webhook` message. With `--standby` it starts a standby instead (bot/standby.py),
waits for it to be loaded, promotes it and reports the seconds from the promotion to the first answer, and
the standby's memory while it waits (RSS and PSS, /proc/<pid>/smaps_rollup). With `--contention` it starts a
serving Rasa, then a standby beside it, and reports the serving one's turn times before and while the standby
loads (what a standby's load costs the users of the serving one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

from bot.config import PROJECT_ROOT
from bot.demo import prepare_database
from bot.launcher import Service, child_environment, isolated_environment, isolated_settings, local_services
from bot.observability.health import rasa_model_loaded
from bot.standby import PROMOTE_DIR_ENV, READY_LINE, promote_file
from bot.training import ensure_model

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def imports_s(log_text: str) -> float:
    """Seconds spent in imports: the cumulative times of the top-level (not nested) imports, summed."""
    total_us = 0
    for line in log_text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 1:
            total_us += int(match.group(2))
    return total_us / 1e6


def _log_times(jsonl: Path) -> dict[str, float]:
    """Wall-clock times (epoch seconds) of Rasa's `Loading model` and `up and running` lines."""
    found: dict[str, float] = {}
    if not jsonl.exists():
        return found
    for line in jsonl.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = str(record.get("message") or record.get("msg") or "")
        stamp = record.get("ts")
        if stamp is None:
            continue
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
        if "Loading model" in message:
            found["loading_model"] = when
        if "up and running" in message:
            found["model_loaded"] = when
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """RSS and PSS of one process in KiB (smaps_rollup)."""
    figures: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            figures[name.lower()] = int(rest.split()[0])
    return figures


def _answered(url: str) -> bool:
    try:
        response = httpx.post(
            f"{url}/webhooks/rest/webhook",
            json={"sender": "bench", "message": "hi"},
            timeout=10,
            trust_env=False,
        )
        return response.status_code == 200 and bool(response.json())
    except httpx.HTTPError:
        return False


@contextmanager
def _throwaway_rasa(prefix: str) -> Iterator[tuple[Path, dict[str, str], Service]]:
    """A state folder of its own (database prepared, logs folder made), the environment and the Rasa service
    `keymedic run` would start there; the folder is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        var_dir = Path(folder)
        settings = isolated_settings(var_dir)
        env = child_environment(settings, isolated_environment(var_dir))
        prepare_database(settings)
        [rasa] = [s for s in local_services(settings, ensure_model()) if s.name == "rasa"]
        (var_dir / "logs").mkdir(parents=True, exist_ok=True)
        yield var_dir, env, rasa


def one_start(standby: bool) -> dict[str, float]:
    with _throwaway_rasa("rasa-start-") as (var_dir, env, rasa):
        log_path = var_dir / "logs" / "rasa.log"
        extra = dict(rasa.extra_env)
        promote_dir = var_dir / "run"
        if standby:
            promote_dir.mkdir(parents=True, exist_ok=True)
            extra[PROMOTE_DIR_ENV] = str(promote_dir)
        url = rasa.url
        with open(log_path, "wb") as log:
            started_wall, started = time.time(), time.monotonic()
            process = subprocess.Popen(
                [rasa.argv[0], "-X", "importtime", *rasa.argv[1:]],
                cwd=PROJECT_ROOT,
                env={**env, **extra},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        result: dict[str, float | int] = {}
        try:
            token = env["KEYMEDIC_RASA_TOKEN"]
            if standby:
                while READY_LINE not in log_path.read_text(errors="replace"):
                    assert process.poll() is None, log_path.read_text()[-3000:]
                    time.sleep(0.1)
                result["standby_loaded_s"] = time.monotonic() - started
                time.sleep(2)  # settled: what it holds while it waits
                result.update({f"standby_{k}_mib": v // 1024 for k, v in memory_kib(process.pid).items()})
                promoted = time.monotonic()
                promote_file(promote_dir, process.pid).touch()
                while not rasa_model_loaded(url, token):
                    time.sleep(0.05)
                result["promoted_to_status_s"] = time.monotonic() - promoted
                while not _answered(url):
                    time.sleep(0.05)
                result["promoted_to_answer_s"] = time.monotonic() - promoted
            else:
                while not rasa_model_loaded(url, token):
                    assert process.poll() is None, log_path.read_text()[-3000:]
                    time.sleep(0.1)
                result["status_s"] = time.monotonic() - started
                first = time.monotonic()
                while not _answered(url):
                    time.sleep(0.05)
                result["answer_s"] = time.monotonic() - started
                result["first_turn_s"] = time.monotonic() - first
            result["imports_s"] = imports_s(log_path.read_text(errors="replace"))
            for name, when in _log_times(var_dir / "logs" / "rasa.jsonl").items():
                result[f"{name}_s"] = when - started_wall
            result.update({f"serving_{k}_mib": v // 1024 for k, v in memory_kib(process.pid).items()})
            result["load_average"] = os.getloadavg()[0]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return result


def _turn_s(url: str) -> float:
    started = time.monotonic()
    assert _answered(url)
    return time.monotonic() - started


def contention() -> dict[str, float]:
    """Median and maximum turn times of a serving Rasa, alone and while a standby loads beside it."""
    with _throwaway_rasa("rasa-contention-") as (var_dir, env, rasa):
        promote_dir = var_dir / "run"
        promote_dir.mkdir(parents=True, exist_ok=True)
        processes: list[subprocess.Popen[bytes]] = []

        def start(name: str, extra: dict[str, str]) -> Path:
            log_path = var_dir / "logs" / f"{name}.log"
            with open(log_path, "wb") as log:
                processes.append(
                    subprocess.Popen(
                        rasa.argv,
                        cwd=PROJECT_ROOT,
                        env={**env, **rasa.extra_env, **extra},
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            return log_path

        try:
            start("rasa", {})
            while not rasa_model_loaded(rasa.url, env["KEYMEDIC_RASA_TOKEN"]):
                time.sleep(0.2)
            _turn_s(rasa.url)
            alone = [_turn_s(rasa.url) for _ in range(40)]
            standby_log = start("standby", {PROMOTE_DIR_ENV: str(promote_dir)})
            loading: list[float] = []
            while READY_LINE not in standby_log.read_text(errors="replace"):
                loading.append(_turn_s(rasa.url))
                time.sleep(0.1)
            return {
                "alone_median_ms": statistics.median(alone) * 1000,
                "alone_max_ms": max(alone) * 1000,
                "during_standby_load_median_ms": statistics.median(loading) * 1000,
                "during_standby_load_max_ms": max(loading) * 1000,
                "turns_during_load": float(len(loading)),
                "load_average": os.getloadavg()[0],
            }
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--standby", action="store_true")
    parser.add_argument("--contention", action="store_true")
    args = parser.parse_args()
    for run in range(args.runs):
        figures = contention() if args.contention else one_start(args.standby)
        shown = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
        print(f"run {run + 1}: {shown}", flush=True)


if __name__ == "__main__":
    main()
