"""The two lock files: the image installs the production one, without the development tools, and the
development one pins every production package to the same version and hashes (`make lock`)."""

from __future__ import annotations

import re

from bot.config import PROJECT_ROOT

PROD = PROJECT_ROOT / "requirements.lock"
DEV = PROJECT_ROOT / "requirements-dev.lock"
# A locked requirement: `name==version \` and its `--hash=` lines.
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n((?:\s+--hash=\S+(?: \\)?\n)+)", re.M)


def _pins(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    return {
        name.lower(): (version, frozenset(re.findall(r"--hash=(\S+)", hashes)))
        for name, version, hashes in _ENTRY.findall(text)
    }


def test_the_production_lock_carries_no_development_tool() -> None:
    prod = _pins(PROD.read_text())
    assert "rasa" in prod and "cryptography" in prod
    for tool in (
        "pytest",
        "pytest-asyncio",
        "playwright",
        "ccxt",
        "mypy",
        "ruff",
        "respx",
        "uv",
        "import-linter",
    ):
        assert tool not in prod, tool


def test_the_development_lock_is_the_production_lock_plus_the_tools() -> None:
    prod, dev = _pins(PROD.read_text()), _pins(DEV.read_text())
    assert {name: dev.get(name) for name in prod} == prod  # same versions, same hashes
    assert {"pytest", "mypy", "import-linter"} <= dev.keys()


def test_the_image_installs_the_production_lock_and_setup_the_development_one() -> None:
    dockerfile = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text()
    assert set(re.findall(r"-r (\S+)", dockerfile)) == {"requirements.lock"}
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements-dev.lock" in makefile
