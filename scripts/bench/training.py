"""Training times of both bots, and the starter bot's project and model (built once per Rasa version).

Both trainings are timed the same way: the wall time of one `rasa` command in a subprocess, with Rasa's
training cache turned off (`RASA_MAX_CACHE_SIZE=0`, a fresh `RASA_CACHE_DIRECTORY`). Without that, KeyMedic
would retrain from the components `make train` has just cached in `.rasa/cache` and look faster than it is.

- The starter bot: `rasa init --no-prompt --init-dir DIR` writes Rasa's starter project and trains it. Its
  time is the starter's training time (it includes copying a dozen small files, which is noise next to the
  training). The project, its model and that time are kept under `var/bench/starter/rasa-<version>/`, so
  later runs reuse them; `--retrain` builds them again.
- KeyMedic: `rasa train --out TMP` on the current config and data, never touching `models/`. The figure is
  kept in `var/bench/training/keymedic-<fingerprint>.json` (the fingerprint of `bot.training`), so it is
  measured again only when the training inputs or Rasa change, or with `--retrain`.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from bot.config import PROJECT_ROOT
from bot.training import TRAINING_OPTIONS, fingerprint

__all__ = ["Training", "StarterProject", "ensure_starter", "keymedic_training", "rasa_version"]

TRAINING_FILE = "bench-training.json"

Source = Literal["measured", "cached", "skipped"]


@dataclass(frozen=True)
class Training:
    """One training time and where it came from."""

    seconds: float | None
    source: Source
    key: str  # what the figure is valid for: the Rasa version, or KeyMedic's training fingerprint
    measured_at: str | None = None
    command: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StarterProject:
    """Rasa's starter project on disk, its trained model, and how long training it took."""

    root: Path
    model: Path
    training: Training


def rasa_version() -> str:
    return metadata.version("rasa")


def _rasa() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two benchmark runs started together must not both build the starter bot in the same place.
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _timed_training(command: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> float:
    """Run one training command with Rasa's cache off; return its wall time; raise with the log on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keymedic-bench-cache-") as cache, open(log, "wb") as out:
        started = time.monotonic()
        completed = subprocess.run(
            command,
            cwd=cwd,
            env={**env, "RASA_CACHE_DIRECTORY": cache, "RASA_MAX_CACHE_SIZE": "0"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        elapsed = time.monotonic() - started
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(command[1:3])} failed with code {completed.returncode}:\n{tail}")
    return elapsed


def _read_training(path: Path) -> Training | None:
    try:
        data = json.loads(path.read_text())
        return Training(**{**data, "source": "cached"})
    except (OSError, ValueError, TypeError):
        return None


def _starter_model(root: Path) -> Path | None:
    models = sorted((root / "models").glob("*.tar.gz"))
    return models[-1] if models else None


def ensure_starter(
    cache_root: Path, env: Mapping[str, str], log_dir: Path, *, retrain: bool
) -> StarterProject:
    """The cached starter project for this Rasa version, built (and its training timed) when missing."""
    version = rasa_version()
    cache_root = cache_root.resolve()  # `rasa init` runs inside the new directory; relative paths would break
    root = cache_root / f"rasa-{version}"
    with _locked(cache_root):
        training = None if retrain else _read_training(root / TRAINING_FILE)
        model = _starter_model(root)
        if training is not None and model is not None:
            return StarterProject(root=root, model=model, training=training)
        print(f"bench: building Rasa {version}'s starter bot (rasa init; trains a model) ...", flush=True)
        building = cache_root / f".building-{version}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        command = [_rasa(), "init", "--no-prompt", "--init-dir", str(building)]
        seconds = _timed_training(command, building, env, log_dir / "starter-init.log")
        if _starter_model(building) is None:
            raise RuntimeError(f"rasa init trained no model; see {log_dir / 'starter-init.log'}")
        training = Training(
            seconds=seconds, source="measured", key=f"rasa=={version}", measured_at=_now(),
            command="rasa init --no-prompt --init-dir DIR",
        )  # fmt: skip
        (building / TRAINING_FILE).write_text(
            json.dumps({**training.as_json(), "source": "measured"}, indent=2)
        )
        shutil.rmtree(root, ignore_errors=True)
        building.rename(root)
        model = _starter_model(root)
        assert model is not None
        print(f"bench: starter bot trained in {seconds:.0f} s -> {root}", flush=True)
        return StarterProject(root=root, model=model, training=training)


def keymedic_training(
    cache_root: Path, env: Mapping[str, str], log_dir: Path, *, retrain: bool, measure: bool
) -> Training:
    """KeyMedic's training time for the current inputs: cached, measured now, or skipped (`measure=False`)."""
    key = fingerprint(PROJECT_ROOT)
    record = cache_root / f"keymedic-{key}.json"
    cached = None if retrain else _read_training(record)
    if cached is not None:
        return cached
    if not measure:
        return Training(seconds=None, source="skipped", key=key)
    print("bench: timing KeyMedic's training (rasa train into a temporary directory) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="keymedic-bench-train-") as out:
        command = [
            _rasa(), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
            "--out", out, *TRAINING_OPTIONS,
        ]  # fmt: skip
        seconds = _timed_training(command, PROJECT_ROOT, env, log_dir / "keymedic-train.log")
    training = Training(
        seconds=seconds, source="measured", key=key, measured_at=_now(),
        command="rasa train --config config.yml --domain domain.yml --data data --out TMP "
        + " ".join(TRAINING_OPTIONS),
    )  # fmt: skip
    cache_root.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(training.as_json(), indent=2))
    print(f"bench: KeyMedic trained in {seconds:.0f} s", flush=True)
    return training
