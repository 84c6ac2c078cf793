"""AES-256-GCM at rest: rows are bound by associated data, keys rotate, the key file is private."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.store.crypto import (
    DecryptionError,
    KeyRing,
    KeyRingError,
    Sealed,
    credential_aad,
    ensure_key_file,
    format_key_ring,
    load_key_ring,
    new_key_entry,
    parse_key_ring,
    write_key_file,
)

AAD = credential_aad(wallet_id=1, user_id=2, version=3)


def test_a_sealed_secret_opens_only_with_its_own_associated_data() -> None:
    ring = parse_key_ring(new_key_entry("k1"))
    sealed = ring.seal(b"top secret", AAD)
    assert b"top secret" not in sealed.blob and sealed.key_id == "k1"
    assert ring.open(sealed, AAD) == b"top secret"
    for other in (
        credential_aad(wallet_id=9, user_id=2, version=3),
        credential_aad(wallet_id=1, user_id=9, version=3),
        credential_aad(wallet_id=1, user_id=2, version=4),
        credential_aad(wallet_id=1, user_id=2, version=3, field="other"),
    ):
        with pytest.raises(DecryptionError):
            ring.open(sealed, other)


def test_tampering_and_unknown_keys_fail_without_revealing_anything() -> None:
    ring = parse_key_ring(new_key_entry("k1"))
    sealed = ring.seal(b"top secret", AAD)
    flipped = bytes([sealed.blob[0] ^ 1]) + sealed.blob[1:]
    with pytest.raises(DecryptionError, match="does not authenticate"):
        ring.open(Sealed("k1", flipped), AAD)
    with pytest.raises(DecryptionError, match="not in the key ring"):
        ring.open(Sealed("gone", sealed.blob), AAD)


def test_the_first_key_seals_and_every_key_opens() -> None:
    old_entry, new_entry = new_key_entry("old"), new_key_entry("new")
    old_sealed = parse_key_ring(old_entry).seal(b"x", AAD)
    ring = parse_key_ring(f"{new_entry},{old_entry}")
    assert ring.current_key_id == "new" and ring.seal(b"x", AAD).key_id == "new"
    assert ring.open(old_sealed, AAD) == b"x"
    assert "new" in repr(ring) and new_entry.split(":")[1] not in repr(ring)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no encryption keys"),
        ("k1", "kid:base64key"),
        ("k1:not base64!", "not valid base64"),
        ("k1:" + "QUJD", "32 bytes"),
        ("bad id:" + "A" * 44, "key id"),
    ],
)
def test_malformed_key_rings_are_refused(text: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        parse_key_ring(text)


def test_duplicate_key_ids_are_refused() -> None:
    entry = new_key_entry("k1")
    with pytest.raises(KeyRingError, match="twice"):
        parse_key_ring(f"{entry},{entry}")


def test_the_local_key_file_is_created_owner_only_even_with_a_permissive_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("KEYMEDIC_ENCRYPTION_KEYS", raising=False)
    old_umask = os.umask(0)
    try:
        ring = load_key_ring(load_settings())
    finally:
        os.umask(old_umask)
    key_file = tmp_path / "var" / "keys" / "encryption.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert list(key_file.parent.iterdir()) == [key_file]  # no temporary file left behind
    assert load_key_ring(load_settings()).current_key_id == ring.current_key_id


def test_racing_creators_of_the_key_file_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "encryption.keys"
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        ensure_key_file(path)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(path.read_text().splitlines()) == 1
    assert write_key_file(path, format_key_ring([new_key_entry()]), replace=False) is False


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("KEYMEDIC_ENCRYPTION_KEYS", raising=False)
    load_key_ring(load_settings())
    (tmp_path / "keys" / "encryption.keys").chmod(0o644)
    with pytest.raises(KeyRingError, match="chmod 600"):
        load_key_ring(load_settings())


def test_the_environment_wins_over_the_key_file_and_settings_never_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = new_key_entry("envkey")
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_ENCRYPTION_KEYS", entry)
    settings = load_settings()
    assert load_key_ring(settings).current_key_id == "envkey"
    assert not (tmp_path / "keys").exists()
    assert entry.split(":")[1] not in repr(settings)


def test_key_ring_validates_its_keys() -> None:
    with pytest.raises(KeyRingError):
        KeyRing({"k1": b"short"}, current="k1")
    with pytest.raises(KeyRingError):
        KeyRing({"k1": os.urandom(32)}, current="k2")
