"""Demo data and the removal impact: exact counts of what removing a wallet would delete."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.demo import DEMO_HANDLE, REST_CHANNEL, seed_demo
from bot.store import services
from bot.store.migrate import alembic_config
from bot.store.model import RemovalImpact
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

pytestmark = pytest.mark.integration


def wallet_id(uow: SqlAlchemyUnitOfWork, exchange: str) -> int:
    with uow:
        user = services.user_for_channel(uow, REST_CHANNEL, DEMO_HANDLE)
        assert user is not None and user.id is not None
        wallet = uow.wallets.find(user.id, exchange, "default")
        assert wallet is not None and wallet.id is not None
        return wallet.id


def test_seed_demo_loads_the_demo_user_once(uow: SqlAlchemyUnitOfWork) -> None:
    assert seed_demo(uow) is True
    assert seed_demo(uow) is False
    with uow:
        user = services.user_for_channel(uow, REST_CHANNEL, DEMO_HANDLE)
        assert user is not None and user.handle == "demo" and user.id is not None
        assert [w.exchange for w in uow.wallets.for_user(user.id)] == [
            "kraken",
            "coinbase",
            "kucoin",
            "binance",
        ]
        assert uow.users.count() == 1
    assert services.masked_key(uow, wallet_id(uow, "kraken")) is not None
    kucoin_id = wallet_id(uow, "kucoin")
    with uow:
        kucoin = services.reveal_credentials(uow, kucoin_id)
        assert kucoin.passphrase is not None


def test_removal_impact_counts_each_kind_exactly(uow: SqlAlchemyUnitOfWork) -> None:
    seed_demo(uow)
    kraken = services.removal_impact(uow, wallet_id(uow, "kraken"))
    assert kraken == RemovalImpact(category_changes=3, notes=2, cost_basis_changes=1, manual_transactions=2)
    assert kraken.total == 8
    assert services.removal_impact(uow, wallet_id(uow, "coinbase")).to_dict() == {
        "category_changes": 0,
        "notes": 1,
        "cost_basis_changes": 0,
        "manual_transactions": 0,
        "total": 1,
    }
    assert services.removal_impact(uow, wallet_id(uow, "kucoin")).total == 0

    # An edit of a manually added transaction is lost with it too, and counts.
    kucoin_id = wallet_id(uow, "kucoin")
    with uow:
        manual = services.add_manual_transaction(
            uow,
            wallet_id=kucoin_id,
            kind="deposit",
            asset="SOL",
            amount=Decimal("3"),
            occurred_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
        )
        assert manual.id is not None
        services.edit_transaction(uow, manual.id, note="from a friend", cost_basis=Decimal("420"))
        uow.commit()
    assert services.removal_impact(uow, kucoin_id) == RemovalImpact(0, 1, 1, 1)

    with pytest.raises(services.NotFound):
        services.removal_impact(uow, 10_000)


def test_seed_demo_command_migrates_and_seeds(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path / "var"))
    # `make` exports the checkout's var/tracker.db; `db upgrade` migrates the tracker database too.
    monkeypatch.setenv("KEYMEDIC_TRACKER_DB", str(tmp_path / "var" / "tracker.db"))
    monkeypatch.delenv("KEYMEDIC_ENCRYPTION_KEYS", raising=False)
    assert main(["db", "upgrade"]) == 0
    assert main(["seed-demo"]) == 0
    assert main(["seed-demo"]) == 0
    out = capsys.readouterr().out
    assert "loaded the demo user" in out and "left as is" in out
    assert main(["db", "current"]) == 0
    # The newest migrations, whichever they are (a new one must not break this test).
    heads = [
        ScriptDirectory.from_config(alembic_config(tracker=tracker)).get_current_head()
        for tracker in (False, True)
    ]
    assert capsys.readouterr().out.splitlines() == [heads[0], f"tracker: {heads[1]}"]
