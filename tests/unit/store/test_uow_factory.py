"""`UnitOfWorkFactory`: one engine and one key ring per process, and a rotated key file still reaches it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.config import Settings, load_settings
from bot.store.crypto import format_key_ring, key_file_path, new_key_entry, write_key_file
from bot.store.unit_of_work import UnitOfWorkFactory, shared_uow_factory


def _settings(tmp_path: Path, keys: str = "") -> Settings:
    return replace(
        load_settings(),
        var_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'keymedic.db'}",
        encryption_keys=keys,
    )


def test_units_of_work_share_one_engine_and_one_key_ring(tmp_path: Path) -> None:
    factory = UnitOfWorkFactory(_settings(tmp_path))
    first, second = factory(), factory(write=False)
    assert first.dialect == second.dialect == "sqlite"
    assert factory.database is factory.database
    assert first.keys is second.keys  # read once, not per unit of work


def test_a_replaced_key_file_is_read_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    factory = UnitOfWorkFactory(settings)
    before = factory.keys()
    # What `keymedic rotate-keys --generate-key` does: a new current key, the old one kept to open old rows.
    old_entries = key_file_path(settings).read_text().split()
    rotated = format_key_ring([new_key_entry("k-new"), *old_entries])
    write_key_file(key_file_path(settings), rotated, replace=True)
    after = factory.keys()
    assert after is not before
    assert after.current_key_id == "k-new"
    assert before.current_key_id in after.key_ids


def test_keys_from_the_environment_are_parsed_once(tmp_path: Path) -> None:
    factory = UnitOfWorkFactory(_settings(tmp_path, keys=new_key_entry("env1")))
    assert factory.keys() is factory.keys()
    assert factory.keys().current_key_id == "env1"
    assert not key_file_path(_settings(tmp_path)).exists()  # no local key file when the keys are given


def test_the_process_shares_one_factory_per_database_and_keys(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert shared_uow_factory(settings) is shared_uow_factory(replace(settings))
    other = _settings(tmp_path / "other")
    assert shared_uow_factory(other) is not shared_uow_factory(settings)
