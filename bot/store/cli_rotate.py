"""`keymedic rotate-keys`: re-encrypt every stored credential with the current encryption key."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=int, default=100, help="credentials per transaction (default 100)"
    )
    parser.add_argument(
        "--generate-key",
        action="store_true",
        help="local key file only: add a fresh key as the current one before re-encrypting",
    )


def run(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from bot.store.crypto import (
        KeyRingError,
        format_key_ring,
        key_file_path,
        load_key_ring,
        new_key_entry,
        write_key_file,
    )
    from bot.store.db import create_database
    from bot.store.rotation import rotate_keys
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = load_settings()
    if args.generate_key:
        if settings.encryption_keys:
            print("rotate-keys: KEYMEDIC_ENCRYPTION_KEYS is set; put the new key first in it instead")
            return 2
        path = key_file_path(settings)
        load_key_ring(settings)  # creates the file when missing and checks its permissions
        old = [line for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
        write_key_file(path, format_key_ring([new_key_entry(), *old]), replace=True)
    try:
        keys = load_key_ring(settings)
    except KeyRingError as exc:
        print(f"rotate-keys: {exc}")
        return 2
    database = create_database(settings.database_url)
    try:
        report = rotate_keys(SqlAlchemyUnitOfWork(database, keys), batch_size=args.batch_size)
    finally:
        database.dispose()
    print(f"rotate-keys: re-encrypted {report.resealed} credential(s) with key {report.current_key_id!r}")
    unused = sorted(set(keys.key_ids) - set(report.credentials_by_key_id))
    if report.done and unused:
        print(f"rotate-keys: no credential uses key(s) {', '.join(unused)} any more; they can be removed")
    return 0 if report.done else 1
