"""`keymedic sync WALLET` over real HTTP against the sandbox, into SQLite: progress lines (not a terminal
here), a clear final line, and exit codes for success, a revoked key and an unknown wallet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for
from bot.sandbox.server import serve_in_thread
from bot.store import services
from bot.store.crypto import new_key_entry, parse_key_ring
from bot.store.db import Database, create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials

pytestmark = pytest.mark.integration

ENTRY = new_key_entry("sync-cli")
HISTORY_SIZE = 2500


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with serve_in_thread(history_size=HISTORY_SIZE) as url:
        yield url


@pytest.fixture
def sqlite_db(
    sqlite_template: Path, tmp_path: Path, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    path = tmp_path / "keymedic.db"
    shutil.copyfile(sqlite_template, path)
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("KEYMEDIC_ENCRYPTION_KEYS", ENTRY)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path / "var"))
    for exchange in SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{sandbox_url}/{exchange}")
    database = create_database(f"sqlite:///{path}")
    yield database
    database.dispose()


def connect(database: Database, exchange: str, scenario: str) -> int:
    uow = SqlAlchemyUnitOfWork(database, parse_key_ring(ENTRY))
    with uow:
        user_id = services.ensure_user(uow, f"trader-{exchange}-{scenario}").id
        uow.commit()
    assert user_id is not None
    update = services.update_or_connect(
        uow,
        user_id=user_id,
        exchange=exchange,
        credentials=Credentials.from_mapping(credentials_for(exchange, scenario)),
        diagnosis_passed=True,
    )
    return update.wallet_id


def test_a_wallet_resyncs_with_progress_and_a_final_line(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet = connect(sqlite_db, "kraken", "valid")
    assert main(["sync", str(wallet)]) == 0
    lines = capsys.readouterr().out.splitlines()
    progress, final = lines[:-1], lines[-1]
    assert progress, "no progress was shown"
    assert all(
        line.startswith(f"sync wallet {wallet} (kraken): ") and "transactions" in line for line in progress
    )
    assert "\r" not in "".join(lines)  # not a terminal: plain lines
    assert final.startswith(f"sync wallet {wallet} (kraken): synced (sync run ")
    assert f"{HISTORY_SIZE:,} added, 0 updated, 0 unchanged" in final

    assert main(["sync", str(wallet)]) == 0  # again: the same history, nothing duplicated
    assert f"0 added, 0 updated, {HISTORY_SIZE:,} unchanged" in capsys.readouterr().out.splitlines()[-1]


def test_a_revoked_key_fails_with_exit_1_and_says_why(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet = connect(sqlite_db, "kraken", "revoked")
    assert main(["sync", str(wallet)]) == 1
    final = capsys.readouterr().out.splitlines()[-1]
    assert final.startswith(f"sync wallet {wallet} (kraken): failed (sync run ")
    assert credentials_for("kraken", "revoked")["api_secret"] not in final


def test_an_unknown_wallet_exits_2(sqlite_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "999"]) == 2
    assert "there is no wallet 999" in capsys.readouterr().err
