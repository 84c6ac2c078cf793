"""`keymedic train` shows which component trains and how far, from what `rasa train` prints (here a stand-in
process printing the same lines), keeps the full output in a log and ends with one clear line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.training import _train_with_progress

RASA_LIKE = r"""
import sys
print("Starting to train component 'WhitespaceTokenizer'.")
print("Finished training component 'WhitespaceTokenizer'.")
print("Starting to train component 'DIETClassifier'.")
for pct in (10, 50, 100):
    sys.stdout.write(f"Epochs:  {pct}%|####| {pct}/100 [00:01<00:00]\r")
print()
print("Starting to train component 'TEDPolicy'.")
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("code", [0, 3])
def test_components_and_epochs_show_in_plain_lines_and_the_log_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: int
) -> None:
    log = tmp_path / "train.log"
    returncode = _train_with_progress([sys.executable, "-c", RASA_LIKE, str(code)], tmp_path, log)
    assert returncode == code
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" [")[0] for line in lines[:-1]] == [
        "train: 0 components trained now WhitespaceTokenizer",
        "train: 1 components trained now DIETClassifier",
        "train: 2 components trained now TEDPolicy",
    ]
    assert lines[-1].startswith(
        "train: rasa train finished" if code == 0 else "train: rasa train failed (log: "
    )
    assert "Epochs:  50%" in log.read_text() and "TEDPolicy" in log.read_text()
