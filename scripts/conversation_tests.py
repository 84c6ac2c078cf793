"""Run Rasa's conversation tests on the model of the current training inputs (trains only if stale).

Two sets:
- `tests/conversations/test_<topic>.yml` (Rasa reads only files named `test_*` as conversation tests): the
  paths the assistant must follow exactly. `rasa test core --fail-on-prediction-errors` exits non-zero on the
  first wrong prediction; that exit code fails `make test` and CI.
- `tests/conversations_heldout/test_*.yml` (issue 14): off-path conversations never used for training, which
  measure how the dialogue policies generalise. Each story holds or not; at least `HELDOUT_MIN_HOLDING` of
  them must hold.

Then both sets once more through the tracker stores (issue 18, scripts/conversation_stores.py): KeyMedic's
windowed store must give every story the same predictions as Rasa's own `SQLTrackerStore`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bot.config import PROJECT_ROOT, load_settings
from bot.launcher import child_environment
from bot.training import ensure_model

STORIES = PROJECT_ROOT / "tests" / "conversations"
HELDOUT = PROJECT_ROOT / "tests" / "conversations_heldout"
HELDOUT_MIN_HOLDING = 0.90


def count_stories(path: Path) -> int:
    """How many stories a Rasa test-story file (or a folder of `test_*.yml` files) holds."""
    files = sorted(path.glob("test_*.yml")) if path.is_dir() else [path]
    return sum(len((yaml.safe_load(f.read_text()) or {}).get("stories") or []) for f in files)


def _rasa_test(model: Path, stories: Path, out: Path, *, fail_fast: bool) -> int:
    settings = load_settings()
    rasa = Path(sys.executable).with_name("rasa")
    command = [str(rasa), "test", "core", "--model", str(model), "--stories", str(stories), "--out", str(out)]
    command += ["--no-plot"] + (["--fail-on-prediction-errors"] if fail_fast else [])
    return subprocess.run(command, cwd=PROJECT_ROOT, env=child_environment(settings)).returncode


def run_heldout(model: Path, out: Path) -> tuple[int, int]:
    """(holding, total) for the held-out off-path stories."""
    out.mkdir(parents=True, exist_ok=True)
    failed_file = out / "failed_test_stories.yml"
    failed_file.unlink(missing_ok=True)
    if _rasa_test(model, HELDOUT, out, fail_fast=False) != 0:
        raise RuntimeError("rasa test core could not run the held-out stories")
    total = count_stories(HELDOUT)
    failed = count_stories(failed_file) if failed_file.exists() else 0
    return total - failed, total


def main() -> int:
    settings = load_settings()
    results = settings.var_dir / "results"
    out = results / "conversations"
    out.mkdir(parents=True, exist_ok=True)
    model = ensure_model()
    code = _rasa_test(model, STORIES, out, fail_fast=True)
    verdict = "passed" if code == 0 else f"FAILED (see {out}/failed_test_stories.yml)"
    print(f"conversation tests {verdict}", flush=True)
    holding, total = run_heldout(model, results / "conversations_heldout")
    share = holding / total if total else 0.0
    held = share >= HELDOUT_MIN_HOLDING
    print(
        f"held-out off-path stories: {holding}/{total} hold ({share:.0%}, need {HELDOUT_MIN_HOLDING:.0%})"
        + ("" if held else f" FAILED (see {results}/conversations_heldout/failed_test_stories.yml)"),
        flush=True,
    )
    same = _same_on_every_store(model)
    return code or (0 if held and same else 1)


def _same_on_every_store(model: Path) -> bool:
    """Whether every store gives every story of both sets the predictions Rasa's own store gives."""
    # Here, not at the top: it loads Rasa, TensorFlow and the model into this process, which the `rasa test`
    # subprocesses above run without.
    from scripts.conversation_stores import replay_all

    started = time.monotonic()
    logging.disable(logging.INFO)  # Rasa's per-prediction lines; the verdict is printed below
    try:
        results = replay_all(model, [STORIES, HELDOUT])
    finally:
        logging.disable(logging.NOTSET)
    same = True
    for stories, outcomes in results.items():
        reference = outcomes["rasa"]
        for name, outcome in outcomes.items():
            differing = sorted(
                story
                for story in reference.predictions
                if outcome.predictions.get(story) != reference.predictions[story]
            )
            # The paths the assistant must follow exactly hold on every store, as with `rasa test core`.
            same = same and not differing and not (stories == STORIES and outcome.failed())
            print(
                f"{stories.name} through the {name} store: {len(outcome.predictions)} stories, "
                f"{len(outcome.failed())} with a wrong prediction, "
                + ("same as Rasa's store" if not differing else f"DIFFERENT from Rasa's store: {differing}"),
                flush=True,
            )
    print(f"tracker stores compared in {time.monotonic() - started:.0f} s", flush=True)
    return same


if __name__ == "__main__":
    sys.exit(main())
