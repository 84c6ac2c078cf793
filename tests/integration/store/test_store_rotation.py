"""Key rotation keeps every credential readable, batch by batch, and the local key file stays private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.secret import Secret
from bot.store import services
from bot.store.crypto import KeyRing, key_file_path, load_key_ring
from bot.store.db import Database
from bot.store.rotation import rotate_keys
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials

pytestmark = pytest.mark.integration

K1, K2 = os.urandom(32), os.urandom(32)


def creds(i: int) -> Credentials:
    return Credentials(api_key=f"API-KEY-{i:04d}-abcdefgh", api_secret=Secret(f"secret-{i}-0123456789"))


def readable(database: Database, keys: KeyRing, wallet_ids: list[int]) -> list[str]:
    uow = SqlAlchemyUnitOfWork(database, keys)
    with uow:
        return [services.reveal_credentials(uow, wallet_id).api_key for wallet_id in wallet_ids]


def test_rotation_reseals_every_credential_and_keeps_them_readable_meanwhile(database: Database) -> None:
    old = SqlAlchemyUnitOfWork(database, KeyRing({"k1": K1}, current="k1"))
    wallet_ids = []
    for i in range(5):
        with old:
            user = services.ensure_user(old, f"user{i}")
            user_id = user.id
            old.commit()
        assert user_id is not None
        update = services.update_or_connect(
            old, user_id=user_id, exchange="kraken", credentials=creds(i), diagnosis_passed=True
        )
        wallet_ids.append(update.wallet_id)
    services.replace_credential(old, wallet_ids[0], creds(99), True)  # one `previous` to re-seal too
    expected = [creds(99).api_key] + [creds(i).api_key for i in range(1, 5)]

    both = KeyRing({"k2": K2, "k1": K1}, current="k2")
    rotating = SqlAlchemyUnitOfWork(database, both)
    partial = rotate_keys(rotating, batch_size=2, max_batches=1)
    assert partial.resealed == 2 and not partial.done
    assert partial.credentials_by_key_id == {"k1": 4, "k2": 2}
    # Mid-rotation the service reads old and new ciphertexts alike.
    assert readable(database, both, wallet_ids) == expected

    report = rotate_keys(rotating, batch_size=2)
    assert report.resealed == 4 and report.done
    assert report.credentials_by_key_id == {"k2": 6}
    assert readable(database, KeyRing({"k2": K2}, current="k2"), wallet_ids) == expected
    assert rotate_keys(rotating).resealed == 0


def test_cli_rotation_with_a_generated_key_on_the_local_key_file(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main

    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("KEYMEDIC_ENCRYPTION_KEYS", raising=False)
    assert main(["seed-demo"]) == 0
    settings = load_settings()
    before = load_key_ring(settings)

    assert main(["rotate-keys", "--generate-key", "--batch-size", "3"]) == 0

    path = key_file_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    after = load_key_ring(settings)
    assert after.current_key_id != before.current_key_id
    assert set(after.key_ids) == {after.current_key_id, before.current_key_id}
    new_only = KeyRing({after.current_key_id: _raw_key(path, after.current_key_id)}, after.current_key_id)
    from bot.store.db import create_database

    database = create_database(database_url)
    try:
        uow = SqlAlchemyUnitOfWork(database, new_only)
        with uow:
            user = uow.users.by_handle("demo")
            assert user is not None and user.id is not None
            wallets = uow.wallets.for_user(user.id)
            assert len(wallets) == 4
            for wallet in wallets:
                assert wallet.id is not None
                assert services.reveal_credentials(uow, wallet.id).api_key
    finally:
        database.dispose()


def _raw_key(path: Path, kid: str) -> bytes:
    import base64

    for line in path.read_text().splitlines():
        if line.startswith(kid + ":"):
            return base64.b64decode(line.split(":", 1)[1])
    raise AssertionError(kid)
