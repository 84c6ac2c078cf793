"""Train the Rasa model only when its inputs changed, and find the model that matches the current inputs.

The fingerprint covers everything `rasa train` reads (config, domain, training data) plus the Rasa version,
and names the model file (`models/keymedic-<fingerprint>.tar.gz`). So `make run`, `make test`, the test
fixtures and the benchmark all agree on one model, and a run trains at most once. Rasa is called as a
subprocess: `bot/` never imports it (DESIGN §2).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from bot.config import PROJECT_ROOT

__all__ = ["TRAINING_OPTIONS", "fingerprint", "model_path", "ensure_model", "add_arguments", "run"]

MODEL_PREFIX = "keymedic-"
# How KeyMedic's model is trained, beside config, domain and data; everything that trains the real model
# (`make train`, the bench's training time) passes these. `--augmentation 0`: Rasa's default glues 50 random
# story pairs together for TEDPolicy, 526 trackers instead of 110, and TED's training took ~100 of the 302 s;
# with max_history 5 the glued stories teach nothing a story does not, and every conversation test and
# held-out story holds without them (docs/conversation.md, "Augmentation and the cached TED").
TRAINING_OPTIONS = ("--augmentation", "0")
# How many older models to keep beside the current one (switching branches back and forth stays cheap).
KEEP_OLD_MODELS = 2


def _training_inputs(root: Path) -> list[Path]:
    files = [root / "config.yml"]
    domain = root / "domain.yml"
    files += [domain] if domain.is_file() else sorted((root / "domain").rglob("*.yml"))
    files += sorted(p for p in (root / "data").rglob("*") if p.suffix in {".yml", ".yaml", ".txt", ".json"})
    return files


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A short hash of every training input and the Rasa version."""
    digest = hashlib.sha256()
    digest.update(f"rasa=={metadata.version('rasa')}".encode())
    digest.update(" ".join(TRAINING_OPTIONS).encode() + b"\0")
    for path in _training_inputs(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(root: Path = PROJECT_ROOT) -> Path:
    """Where the model for the current training inputs lives (it may not exist yet)."""
    return root / "models" / f"{MODEL_PREFIX}{fingerprint(root)}.tar.gz"


@contextmanager
def _training_lock(models_dir: Path) -> Iterator[None]:
    # Two commands started together (say `make run` in one terminal and pytest in another) must not both
    # spend minutes training the same model.
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / ".train.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _prune_old_models(models_dir: Path, current: Path) -> None:
    old = sorted(
        (p for p in models_dir.glob(f"{MODEL_PREFIX}*.tar.gz") if p != current),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in old[KEEP_OLD_MODELS:]:
        stale.unlink(missing_ok=True)


_COMPONENT = re.compile(r"Starting to train component '(\w+)'")
_EPOCHS = re.compile(r"Epochs:\s+(\d+)%")


def _train_with_progress(command: list[str], root: Path, log_path: Path) -> int:
    """Run `rasa train` with its output in `log_path` and a progress line (live on a terminal, plain lines
    in CI): which component is training and how far its epochs are. Returns the exit code."""
    from bot.observability.progress import Progress

    progress = Progress("train", unit="components trained", stream=sys.stdout)
    components, component, note = 0, "", "starting"
    with (
        open(log_path, "w", encoding="utf-8") as log,
        # Text mode splits tqdm's carriage-return redraws into lines too, so epochs show as they pass.
        subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            started = _COMPONENT.search(line)
            if started:
                components += bool(component)
                component = started.group(1)
                note = f"now {component}"
            elif epochs := _EPOCHS.search(line):
                note = f"now {component}, epochs {epochs.group(1)}%"
            progress.update(components, note, force=started is not None)
        returncode = process.wait()
    progress.finish("rasa train finished" if returncode == 0 else f"rasa train failed (log: {log_path})")
    return returncode


def ensure_model(root: Path = PROJECT_ROOT, *, quiet: bool = False) -> Path:
    """Return the model for the current inputs, training it first when it does not exist."""
    target = model_path(root)
    if target.exists():
        return target
    with _training_lock(target.parent):
        if target.exists():  # trained by someone else while we waited for the lock
            return target
        rasa = Path(sys.executable).with_name("rasa")
        command = [
            str(rasa), "train",
            "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
            "--out", str(target.parent), "--fixed-model-name", target.name.removesuffix(".tar.gz"),
            *TRAINING_OPTIONS,
        ]  # fmt: skip
        print(f"train: training inputs changed, training {target.name} (takes a few minutes)", flush=True)
        started = time.monotonic()
        log_path = target.parent / "train.log"
        if quiet:
            returncode = subprocess.run(command, cwd=root, stdout=subprocess.DEVNULL).returncode
        else:
            returncode = _train_with_progress(command, root, log_path)
        if returncode != 0 or not target.exists():
            raise SystemExit(f"train: rasa train failed with exit code {returncode}; see {log_path}")
        print(f"train: done in {time.monotonic() - started:.0f} s -> {target}", flush=True)
        _prune_old_models(target.parent, target)
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `keymedic train`."""
    parser.add_argument("--print-path", action="store_true", help="print the model's path and nothing else")


def run(args: argparse.Namespace) -> int:
    """`keymedic train`: train when stale, then say which model is current."""
    path = ensure_model(quiet=bool(args.print_path))
    if args.print_path:
        print(path)
    else:
        print(f"train: model is up to date: {path.relative_to(PROJECT_ROOT)}")
    return 0
