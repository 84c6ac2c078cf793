"""The diagnosis limits' memory store forgets, and the windows name users and keys as they should."""

from __future__ import annotations

from dataclasses import replace

from bot.config import load_settings
from bot.diagnosis.limits import windows_for
from bot.diagnosis.ratelimit import MemoryStore, Window, key_fingerprint
from tests.support.clock import FakeClock


def test_a_full_window_refuses_until_its_oldest_event_leaves_it() -> None:
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    window = [Window("user:1:kraken", 2, 600.0)]
    assert store.acquire(window) == 0
    clock.now += 100
    assert store.acquire(window) == 0
    assert store.acquire(window) == 500.0  # the first event leaves the window in 500 s
    clock.now += 500
    assert store.acquire(window) == 0


def test_nothing_is_recorded_when_any_window_is_full() -> None:
    store = MemoryStore(clock=FakeClock(1000.0))
    key = Window("key:abc", 1, 600.0)
    assert store.acquire([key]) == 0
    assert store.acquire([Window("user:1", 5, 600.0), key]) > 0
    # The refused attempt did not count against the user.
    assert all(store.acquire([Window("user:1", 5, 600.0)]) == 0 for _ in range(5))


def test_the_memory_store_keeps_at_most_max_keys_and_drops_expired_ones_first() -> None:
    clock = FakeClock(1000.0)
    store = MemoryStore(max_keys=3, clock=clock)
    store.acquire([Window("old", 1, 10.0)])
    clock.now += 5
    store.acquire([Window("a", 1, 600.0)])
    store.acquire([Window("b", 1, 600.0)])
    clock.now += 10  # "old" has left its window
    store.acquire([Window("c", 1, 600.0)])
    assert len(store) == 3  # "old" went, not "a"
    assert store.acquire([Window("a", 1, 600.0)]) > 0  # "a" is still remembered
    for n in range(100):  # a stream of new keys cannot grow it
        store.acquire([Window(f"new{n}", 1, 600.0)])
    assert len(store) == 3


def test_a_key_is_named_by_an_hmac_that_holds_nothing_of_it() -> None:
    api_key = "K" * 56
    first = key_fingerprint(b"server-key-one", "kraken", api_key)
    assert first == key_fingerprint(b"server-key-one", "kraken", api_key)
    assert first != key_fingerprint(b"server-key-two", "kraken", api_key)  # useless without the server key
    assert first != key_fingerprint(b"server-key-one", "okx", api_key)
    assert "KKKK" not in first


def test_the_windows_name_the_user_not_the_conversation() -> None:
    settings = replace(
        load_settings(), diagnosis_rate_limit=5, diagnosis_user_limit=10, diagnosis_key_limit=3
    )
    windows = windows_for(settings, b"k", "kraken", "APIKEY", "user:7")
    assert [(w.key.split(":")[0], w.limit) for w in windows] == [("key", 3), ("user", 5), ("user", 10)]
    assert {w.key for w in windows[1:]} == {"user:user:7:kraken", "user:user:7"}
    assert all("APIKEY" not in w.key for w in windows)
