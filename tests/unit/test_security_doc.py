"""docs/security.md names the test proving each lock; a renamed or deleted test must not leave it lying."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `tests/x/test_y.py::test_z`, or `::test_z` for another test of the file named just before it.
_PROOF = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`")


def _proofs() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "security.md").read_text()
    proofs, path = [], ""
    for match in _PROOF.finditer(text):
        path = match.group(1) or path
        proofs.append((path, match.group(2)))
    return proofs


def test_the_security_page_names_proofs() -> None:
    assert len(_proofs()) >= 30


def test_every_test_the_security_page_names_exists() -> None:
    missing = [
        f"{path}::{name}"
        for path, name in _proofs()
        if not (ROOT / path).is_file()
        or not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert missing == []
