"""A real `SupportDesk` on the demo data in SQLite, for action tests that go through the real services."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.assistant import SupportDesk
from bot.config import Settings, load_settings
from bot.demo import prepare_database


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo data, migrated and seeded once per module; each test works on its own copy of the file."""
    var_dir = tmp_path_factory.mktemp("demo")
    settings = replace(load_settings(), var_dir=var_dir, database_url=f"sqlite:///{var_dir / 'keymedic.db'}")
    assert prepare_database(settings)
    return settings


@pytest.fixture
def desk(demo_database: Settings, tmp_path: Path) -> SupportDesk:
    shutil.copytree(demo_database.var_dir, tmp_path / "var")
    settings = replace(
        demo_database, var_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'var' / 'keymedic.db'}"
    )
    return SupportDesk(settings)
