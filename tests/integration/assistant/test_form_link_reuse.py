"""The key update form asks for the key after every side question: it hands out the same fresh, unused link
again instead of a new token per ask, and a new one once the link was used or is no longer fresh."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.assistant import SupportDesk
from bot.assistant import desk as desk_module
from bot.config import load_settings
from bot.demo import prepare_database
from bot.intake import submit_credentials
from bot.sandbox.scenarios import credentials_for
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

pytestmark = pytest.mark.integration

CHANNEL, DEMO = "rest", "demo"


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SupportDesk]:
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", f"sqlite:///{tmp_path / 'keymedic.db'}")
    settings = load_settings()
    assert prepare_database(settings)
    yield SupportDesk(settings)


async def _kraken(desk: SupportDesk) -> int:
    return next(w.wallet_id for w in await desk.wallets(CHANNEL, DEMO) if w.exchange == "kraken")


async def test_asking_again_hands_out_the_same_unused_link(desk: SupportDesk) -> None:
    wallet_id = await _kraken(desk)
    first = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    again = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    assert again["token"] == first["token"]
    other_conversation = await desk.credential_form(CHANNEL, DEMO, "conv-2", wallet_id)
    assert other_conversation["token"] != first["token"]  # a link is bound to its conversation


async def test_a_used_link_is_never_handed_out_again(desk: SupportDesk) -> None:
    wallet_id = await _kraken(desk)
    first = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    uow = SqlAlchemyUnitOfWork(create_database(desk.settings.database_url), load_key_ring(desk.settings))
    fields = {"wallet_id": wallet_id, **credentials_for("kraken", "valid")}
    submit_credentials(uow, first["token"], user_id=None, fields=fields)
    after = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    assert after["token"] != first["token"]


async def test_a_link_older_than_the_reuse_window_is_replaced(
    desk: SupportDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_module, "FORM_LINK_REUSE", timedelta(0))
    wallet_id = await _kraken(desk)
    first = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    again = await desk.credential_form(CHANNEL, DEMO, "conv-1", wallet_id)
    assert again["token"] != first["token"]
