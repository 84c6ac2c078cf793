"""Run Rasa's conversation tests on the model of the current training inputs (trains only if stale).

The stories are in `tests/conversations/test_<topic>.yml` (Rasa reads only files named `test_*` as
conversation tests). `rasa test core --fail-on-prediction-errors` exits non-zero on the first wrong
prediction; this wrapper passes that exit code on, so `make test` and CI fail with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config import PROJECT_ROOT, load_settings
from bot.launcher import child_environment
from bot.training import ensure_model

STORIES = PROJECT_ROOT / "tests" / "conversations"


def main() -> int:
    settings = load_settings()
    out = settings.var_dir / "results" / "conversations"
    out.mkdir(parents=True, exist_ok=True)
    rasa = Path(sys.executable).with_name("rasa")
    command = [
        str(rasa), "test", "core", "--model", str(ensure_model()), "--stories", str(STORIES),
        "--fail-on-prediction-errors", "--out", str(out), "--no-plot",
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=child_environment(settings))
    verdict = "passed" if completed.returncode == 0 else f"FAILED (see {out}/failed_test_stories.yml)"
    print(f"conversation tests {verdict}", flush=True)
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
