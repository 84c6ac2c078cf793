"""Two OS processes updating the key of the same account at once (two Rasa action servers, say)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import services
from bot.store.crypto import new_key_entry, parse_key_ring
from bot.store.db import Database
from bot.store.model import CredentialStatus
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ROUNDS = 4

CHILD = f"""
import json, os, sys, time
from bot.config import load_settings
from bot.types.credentials import Credentials
from bot.secret import Secret
from bot.store import services
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from tests.support.waiting import eventually

user_id, go, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = load_settings()
uow = SqlAlchemyUnitOfWork(create_database(settings.database_url), load_key_ring(settings))
open(go + "." + name, "w").close()  # ready: imported and connected
while not os.path.exists(go):
    time.sleep(0.001)
results = []
for i in range({ROUNDS}):
    creds = Credentials(api_key=f"KEY-{{name}}-{{i}}-pad", api_secret=Secret(f"secret-{{name}}-{{i}}-xxxxxx"))
    update = services.update_or_connect(
        uow, user_id=user_id, exchange="kraken", credentials=creds, diagnosis_passed=True
    )
    results.append(update.wallet_id)
print(json.dumps(results))
"""


def test_concurrent_updates_from_two_processes_leave_one_wallet_and_one_active_credential(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    entry = new_key_entry("k1")
    uow = SqlAlchemyUnitOfWork(database, parse_key_ring(entry))
    with uow:
        user = services.ensure_user(uow, "racer")
        user_id = user.id
        uow.commit()
    go = tmp_path / "go"
    env = {
        **os.environ,
        "KEYMEDIC_DATABASE_URL": database_url,
        "KEYMEDIC_ENCRYPTION_KEYS": entry,
        "KEYMEDIC_VAR_DIR": str(tmp_path / "var"),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(user_id), str(go), name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    # Both have imported and are spinning on the go file: they start their writes together.
    eventually(
        lambda: all(
            Path(f"{go}.{name}").exists() or child.poll() is not None
            for name, child in zip("ab", children, strict=True)
        ),
        "both writers to be ready",
    )
    go.touch()
    outputs = [child.communicate(timeout=60) for child in children]
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()[-2000:]
    wallet_ids = {wallet_id for out, _ in outputs for wallet_id in json.loads(out)}

    with uow:
        wallets = uow.wallets.for_user(user_id)  # type: ignore[arg-type]
        assert len(wallets) == 1
        assert wallet_ids == {wallets[0].id}
        credentials = uow.credentials.for_wallet(wallets[0].id)  # type: ignore[arg-type]
        assert sorted(c.version for c in credentials) == list(range(1, 2 * ROUNDS + 1))
        by_status = [c.status for c in credentials]
        assert by_status.count(CredentialStatus.ACTIVE) == 1
        assert by_status.count(CredentialStatus.PREVIOUS) == 1
        assert by_status.count(CredentialStatus.RETIRED) == 2 * ROUNDS - 2
        revealed = services.reveal_credentials(uow, wallets[0].id)  # type: ignore[arg-type]
        assert revealed.api_key.startswith("KEY-")
