"""The diagnosis limits on the real Redis (127.0.0.1:6379): two replicas share one count, and a new Slack
thread of the same user does not start it afresh. Each test uses its own key namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from bot.assistant import SupportDesk
from bot.config import load_settings
from bot.demo import prepare_database
from bot.diagnosis import DiagnosisRateLimited, limits
from bot.diagnosis.ratelimit import RedisStore, Window
from bot.exchanges._http import aclose_shared_client
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for
from bot.secret import Secret
from bot.store import services
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials
from tests.support.redis import REDIS_URL

pytestmark = pytest.mark.integration


def replica(namespace: str) -> RedisStore:
    """The store one replica builds: its own connection, the deployment's namespace."""
    return RedisStore(redis.Redis.from_url(REDIS_URL), prefix=f"{namespace}:diagnosis-limit")


def test_two_replicas_share_one_count_and_the_windows_expire(namespace: str) -> None:
    first, second = replica(namespace), replica(namespace)
    window = [Window("user:user:7:kraken", 3, 600.0)]
    assert first.acquire(window) == 0
    assert second.acquire(window) == 0
    assert first.acquire(window) == 0
    wait = second.acquire(window)  # the fourth, on the other replica: refused
    assert 590 <= wait <= 600
    key = f"{namespace}:diagnosis-limit:user:user:7:kraken"
    client = redis.Redis.from_url(REDIS_URL)
    assert client.zcard(key) == 3  # the refused attempt was not recorded
    assert 0 < client.pttl(key) <= 600_000  # the window goes with its last event
    client.close()


def test_the_window_slides_on_redis_time(namespace: str) -> None:
    store = replica(namespace)
    window = [Window("key:abc", 1, 0.3)]
    assert store.acquire(window) == 0
    assert store.acquire(window) > 0
    import time

    time.sleep(0.35)
    assert store.acquire(window) == 0


@pytest.fixture
async def desk(
    tmp_path: Path, sandbox_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SupportDesk]:
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", f"sqlite:///{tmp_path / 'keymedic.db'}")
    monkeypatch.setenv("KEYMEDIC_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("KEYMEDIC_REDIS_NAMESPACE", namespace)
    monkeypatch.setenv("KEYMEDIC_DIAGNOSIS_RATE_LIMIT", "2")
    for exchange in SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{sandbox_url}/{exchange}")
    monkeypatch.setattr(limits, "_limiters", {})  # this process has built no limiter yet
    settings = load_settings()
    assert prepare_database(settings)
    yield SupportDesk(settings, enqueue_resync=lambda run_id: None)
    await aclose_shared_client()


async def test_a_new_slack_thread_on_another_replica_does_not_reset_the_users_count(
    desk: SupportDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = SqlAlchemyUnitOfWork(create_database(desk.settings.database_url), load_key_ring(desk.settings))
    threads = ["T1-D1-1700000000.000100", "T1-D1-1700000100.000200", "T1-D1-1700000200.000300"]
    with uow:
        demo = uow.users.by_handle("demo")
        assert demo is not None
        for thread in threads:  # three Slack threads, each its own conversation, all the demo user's
            services.link_identity(uow, demo, channel="slack", external_id=thread)
        uow.commit()
    kraken = next(w.wallet_id for w in await desk.wallets("slack", threads[0]) if w.exchange == "kraken")

    def submission() -> str:
        # The same sandbox key each time, within its own budget (5): what fills up is the user's window (2).
        fields = credentials_for("kraken", "valid")
        credentials = Credentials(api_key=fields["api_key"], api_secret=Secret(fields["api_secret"]))
        return services.store_pending_credential(uow, wallet_id=kraken, credentials=credentials)

    for thread in threads[:2]:
        await desk.check_key("slack", thread, thread, kraken, submission())
        monkeypatch.setattr(limits, "_limiters", {})  # the next turn lands on another replica
    with pytest.raises(DiagnosisRateLimited):
        await desk.check_key("slack", threads[2], threads[2], kraken, submission())


def test_a_ban_and_a_refusal_seen_by_one_replica_hold_for_the_other(namespace: str) -> None:
    """Refusals and bans live in Redis under the deployment's namespace (bot/diagnosis/refusals.py), named by
    HMACs: what one replica learned, another answers without asking the exchange."""
    from bot.diagnosis.refusals import RedisSignals, Refusals
    from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable

    def replica_refusals() -> Refusals:
        client = redis.Redis.from_url(REDIS_URL)
        return Refusals(RedisSignals(client, prefix=f"{namespace}:diagnosis-refusal"), b"shared server key")

    first, second = replica_refusals(), replica_refusals()
    fields = credentials_for("binance", "valid")
    creds = Credentials(api_key=fields["api_key"], api_secret=Secret(fields["api_secret"]))
    unknown = tuple(ItemOutcome(item, Status.UNKNOWN, detail="-") for item in Item)
    banned = Diagnosis("binance", unknown, Unavailable("rate_limited", "banned", 120.0, "HTTP 418"))
    first.record("binance", creds, banned, refused=False)
    held = second.check("binance", creds)
    assert held is not None and held.unavailable is not None and held.unavailable.raw_code == "HTTP 418"

    kraken = credentials_for("kraken", "unknown_key")
    kraken_creds = Credentials(api_key=kraken["api_key"], api_secret=Secret(kraken["api_secret"]))
    refused_items = tuple(
        ItemOutcome(item, Status.FAIL if item is Item.KEY_KNOWN else Status.UNKNOWN, fix="x", detail="-")
        for item in Item
    )
    first.record("kraken", kraken_creds, Diagnosis("kraken", refused_items), refused=True)
    again = second.check("kraken", kraken_creds)
    assert again is not None and again.refused_before_s is not None
    stored = b"".join(
        redis.Redis.from_url(REDIS_URL).get(key) or b""
        for key in redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{namespace}:diagnosis-refusal:*")
    )
    assert kraken["api_key"].encode() not in stored and kraken["api_secret"].encode() not in stored
