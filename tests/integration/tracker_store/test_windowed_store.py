"""`WindowedSQLTrackerStore` on real SQLite and PostgreSQL: a long conversation keeps its state, its events
and their order, while every retrieve loads a bounded window."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Event,
    LoopInterrupted,
    ReminderScheduled,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.store.migrate import upgrade_tracker
from rasa_plugins.tracker_store import WindowedSQLTrackerStore
from tests.support.tracker import load_domain, postgres_tracker_database, tracker_store_kwargs

WINDOW = 5

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def domain() -> Domain:
    return load_domain()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kwargs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"dialect": "sqlite", "db": str(tmp_path / "tracker.db")}
        return
    with postgres_tracker_database() as url:
        yield tracker_store_kwargs(url)


def _store(domain: Domain, kwargs: dict[str, Any], window: int = WINDOW) -> WindowedSQLTrackerStore:
    if kwargs["dialect"] == "sqlite":
        upgrade_tracker(f"sqlite:///{kwargs['db']}")  # as `keymedic run` does first; again is a no-op
    return WindowedSQLTrackerStore(domain=domain, window_turns=window, **kwargs)


def _dispose(store: WindowedSQLTrackerStore) -> None:
    store.engine.dispose()


def session_start(clock: Iterator[float]) -> list[Event]:
    """What Rasa's processor writes when a session starts."""
    return [
        ActionExecuted("action_session_start", timestamp=next(clock)),
        SessionStarted(timestamp=next(clock)),
        ActionExecuted("action_listen", timestamp=next(clock)),
    ]


def turn(i: int, clock: Iterator[float], *, paused: bool) -> list[Event]:
    """One scripted turn whose events move slots, the form and its flags; a paused bot only logs the
    user's message (Rasa predicts nothing, so no `action_listen` either)."""
    events: list[Event] = [
        UserUttered(f"message {i}", {"name": "inform", "confidence": 1.0}, timestamp=next(clock))
    ]
    if paused:
        return events
    events.append(ActionExecuted("key_update_form", timestamp=next(clock)))
    if i % 7 == 0:
        events.append(ActiveLoop("key_update_form", timestamp=next(clock)))
    if i % 11 == 0:
        events.append(ActiveLoop(None, timestamp=next(clock)))
    if i % 5 == 0:
        events.append(LoopInterrupted(True, timestamp=next(clock)))
    events.append(SlotSet("exchange", ["kraken", "coinbase", "kucoin"][i % 3], timestamp=next(clock)))
    if i % 4 == 0:
        events.append(SlotSet("wallet_id", str(i), timestamp=next(clock)))
    if i % 9 == 0:
        events.append(SlotSet("wallet_id", None, timestamp=next(clock)))
    if i % 6 == 0:  # the secure form, as actions/key_update.py sends it
        form = {"custom": {"type": "credential_form", "wallet_id": str(i % 4)}}
        events.append(BotUttered(f"form {i}", data=form, timestamp=next(clock)))
    if i % 13 == 0:
        events.append(ActionExecuted("action_update_credentials", timestamp=next(clock)))
    if i % 17 == 0:
        events.append(SlotSet("key_status", "passed", timestamp=next(clock)))
    events.append(BotUttered(f"reply {i}", timestamp=next(clock)))
    events.append(ActionExecuted("action_listen", timestamp=next(clock)))
    return events


def _looking_back(tracker: DialogueStateTracker) -> list[tuple[str, ...]]:
    """What walks back over `tracker.events` find, in the order they find it: each slot's last value, each
    action's last run, each form's last (de)activation, each kind of secure form's last sending. An action
    asking "was X after Y?" (actions/key_update.py `_wallet_named_since_last_update`, `_form_sent_for`)
    reads exactly this order, so a window must give it as the whole session does (issue 18)."""
    seen: dict[tuple[str, ...], None] = {}
    events = list(tracker.events)
    starts = [n for n, event in enumerate(events) if isinstance(event, SessionStarted)]
    # Rasa's own store loads a session from its `session_started` on, as this one does.
    for event in reversed(events[starts[-1] if starts else 0 :]):
        if isinstance(event, SlotSet):
            seen.setdefault(("slot", event.key, repr(event.value)))
        elif isinstance(event, ActionExecuted) and event.action_name != "action_listen":
            seen.setdefault(("action", str(event.action_name)))
        elif isinstance(event, ActiveLoop):
            seen.setdefault(("active_loop", str(event.name)))
        elif isinstance(event, BotUttered) and event.data.get("custom"):
            seen.setdefault(("bot", repr(event.data["custom"])))
    # A slot's older values are not what a walk back asks for: only each slot's first find counts.
    slots: set[str] = set()
    found = []
    for key in seen:
        if key[0] == "slot":
            if key[1] in slots:
                continue
            slots.add(key[1])
        found.append(key)
    return found


def _state(tracker: DialogueStateTracker) -> tuple[Any, ...]:
    loop = tracker.active_loop
    return (
        {name: slot.value for name, slot in tracker.slots.items()},
        None if loop is None else (loop.name, loop.is_interrupted, loop.rejected),
        tracker.is_paused(),
        tracker.latest_message.text if tracker.latest_message else None,
    )


def _run_conversation(
    store: WindowedSQLTrackerStore, domain: Domain, sender: str, turns: int
) -> tuple[DialogueStateTracker, list[int]]:
    """Drive `turns` turns through retrieve → update → save, as Rasa's processor does; checks the
    retrieved state against a full replay before every turn. Returns the reference and each load's size."""
    clock = (1_700_000_000.0 + step * 0.01 for step in itertools.count())
    reference = DialogueStateTracker(sender, domain.slots)
    loaded: list[int] = []

    async def go() -> None:
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        for event in session_start(clock):
            tracker.update(event)
            reference.update(event)
        await store.save(tracker)
        paused = False
        for i in range(1, turns + 1):
            tracker = await store.retrieve(sender)
            assert tracker is not None
            assert _state(tracker) == _state(reference), f"state differs before turn {i}"
            assert _looking_back(tracker) == _looking_back(reference), f"history differs before turn {i}"
            loaded.append(len(tracker.events))
            new = turn(i, clock, paused=paused)
            if i == 150:
                new.append(ConversationPaused(timestamp=next(clock)))
                paused = True
            elif i == 160:
                new = [ConversationResumed(timestamp=next(clock)), *turn(i, clock, paused=False)]
                paused = False
            for event in new:
                tracker.update(event)
                reference.update(event)
            await store.save(tracker)

    asyncio.run(go())
    return reference, loaded


def _stored(store: WindowedSQLTrackerStore, sender: str) -> list[dict[str, Any]]:
    full = asyncio.run(store.retrieve_full_tracker(sender))
    assert full is not None
    return [event.as_dict() for event in full.events]


def test_long_conversation_keeps_state_and_every_event_in_order(
    domain: Domain, store_kwargs: dict[str, Any]
) -> None:
    store = _store(domain, store_kwargs)
    try:
        reference, loaded = _run_conversation(store, domain, "long", turns=320)
        # Every event once, in order, nothing synthetic: the database holds exactly the conversation.
        assert _stored(store, "long") == [event.as_dict() for event in reference.events]
        # The paused stretch (turns 150-159) survived the window and the resume lifted it.
        final = asyncio.run(store.retrieve("long"))
        assert final is not None and _state(final) == _state(reference)
        # Bounded: once the window is full, no retrieve loads more than the window's turns and the state.
        longest_turn = max(len(turn(i, iter(itertools.count()), paused=False)) for i in range(1, 100))
        bound = WINDOW * longest_turn + len(domain.slots) + 4
        assert max(loaded[30:]) <= bound
        assert len(reference.events) > 10 * bound
    finally:
        _dispose(store)


def test_window_zero_loads_the_whole_session(domain: Domain, store_kwargs: dict[str, Any]) -> None:
    store = _store(domain, store_kwargs, window=0)
    try:
        reference, loaded = _run_conversation(store, domain, "whole", turns=40)
        # Before turn 40: everything from SessionStarted on (Rasa's session query leaves out the
        # `action_session_start` before it), without turn 40's own events.
        last_turn = len(turn(40, iter(itertools.count()), paused=False))
        assert loaded[-1] == len(reference.events) - 1 - last_turn
        assert _stored(store, "whole") == [event.as_dict() for event in reference.events]
    finally:
        _dispose(store)


def test_a_new_session_starts_the_window_over(domain: Domain, store_kwargs: dict[str, Any]) -> None:
    store = _store(domain, store_kwargs)
    clock = (1_800_000_000.0 + step * 0.01 for step in itertools.count())

    async def go() -> DialogueStateTracker:
        tracker = await store.get_or_create_tracker("s", append_action_listen=False)
        for event in [
            *session_start(clock),
            *itertools.chain(*(turn(i, clock, paused=False) for i in range(20))),
        ]:
            tracker.update(event)
        await store.save(tracker)
        for i in range(20, 30):  # one save per turn: snapshots
            tracker = await store.retrieve("s")
            assert tracker is not None
            for event in turn(i, clock, paused=False):
                tracker.update(event)
            await store.save(tracker)
        tracker = await store.retrieve("s")
        assert tracker is not None
        for event in [*session_start(clock), SlotSet("exchange", "okx", timestamp=next(clock))]:
            tracker.update(event)
        tracker.update(ActionExecuted("action_listen", timestamp=next(clock)))
        await store.save(tracker)
        found = await store.retrieve("s")
        assert found is not None
        return found

    try:
        tracker = asyncio.run(go())
        # Only the new session, as Rasa's own store: it begins at the latest SessionStarted.
        assert isinstance(tracker.events[0], SessionStarted)
        assert tracker.get_slot("exchange") == "okx"
    finally:
        _dispose(store)


def test_saving_a_tracker_twice_adds_nothing_twice(domain: Domain, store_kwargs: dict[str, Any]) -> None:
    store = _store(domain, store_kwargs)
    clock = (1_900_000_000.0 + step * 0.01 for step in itertools.count())

    async def go() -> None:
        tracker = await store.create_tracker("twice")  # not loaded by the store: Rasa's count decides
        for event in turn(1, clock, paused=False):
            tracker.update(event)
        await store.save(tracker)
        await store.save(tracker)
        loaded = await store.retrieve("twice")
        assert loaded is not None
        await store.save(loaded)

    try:
        asyncio.run(go())
        assert len(_stored(store, "twice")) == 1 + len(turn(1, iter(itertools.count()), paused=False))
    finally:
        _dispose(store)


def test_a_sqlite_file_keeps_one_tuned_connection_open_across_turns(domain: Domain, tmp_path: Path) -> None:
    store = _store(domain, {"dialect": "sqlite", "db": str(tmp_path / "t.db")})
    opened: list[object] = []
    sa.event.listen(store.engine, "connect", lambda connection, _record: opened.append(connection))
    try:
        _run_conversation(store, domain, "pooled", turns=30)
        # The connection the store opened at start-up (to create its table) served all 30 turns.
        assert opened == []
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        _dispose(store)


def test_conversations_saved_at_the_same_time_keep_every_event_once(
    domain: Domain, store_kwargs: dict[str, Any]
) -> None:
    store = _store(domain, store_kwargs)
    conversations, turns = 20, 8
    clock = (2_000_000_000.0 + step * 0.01 for step in itertools.count())

    async def converse(sender: str) -> None:
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        for event in session_start(clock):
            tracker.update(event)
        await store.save(tracker)
        for i in range(1, turns + 1):
            loaded = await store.retrieve(sender)
            assert loaded is not None
            for event in turn(i, clock, paused=False):
                loaded.update(event)
            await store.save(loaded)

    async def everyone() -> None:
        await asyncio.gather(*(converse(f"together-{n}") for n in range(conversations)))

    try:
        asyncio.run(everyone())
        expected = [
            event["event"]
            for event in [e.as_dict() for e in session_start(itertools.count(0.0))]
            + [e.as_dict() for i in range(1, turns + 1) for e in turn(i, itertools.count(0.0), paused=False)]
        ]
        for n in range(conversations):
            assert [event["event"] for event in _stored(store, f"together-{n}")] == expected
    finally:
        _dispose(store)


def test_a_reminder_scheduled_before_the_window_still_fires(
    domain: Domain, store_kwargs: dict[str, Any]
) -> None:
    """Rasa drops a reminder whose `ReminderScheduled` it cannot find among the tracker's applied events
    (`MessageProcessor._is_reminder_still_valid`); one scheduled long before the window must survive it."""
    store = _store(domain, store_kwargs)
    clock = (2_000_000_000.0 + step * 0.01 for step in itertools.count())
    due = datetime.now(timezone.utc) + timedelta(minutes=5)
    reminder = ReminderScheduled("ask_sync_status", due, name="sync-check-7", timestamp=1_999_999_999.0)

    async def go() -> DialogueStateTracker:
        tracker = await store.get_or_create_tracker("r", append_action_listen=False)
        for event in [*session_start(clock), reminder]:
            tracker.update(event)
        for i in range(1, 3 * WINDOW):
            for event in turn(i, clock, paused=False):
                tracker.update(event)
            await store.save(tracker)
            found = await store.retrieve("r")
            assert found is not None
            tracker = found
        return tracker

    try:
        tracker = asyncio.run(go())
        assert not any(isinstance(e, UserUttered) and e.text == "message 1" for e in tracker.events)  # cut
        assert MessageProcessor._is_reminder_still_valid(tracker, reminder)
        stored = _stored(store, "r")
        assert sum(1 for event in stored if event["event"] == "reminder") == 1  # never saved twice
    finally:
        _dispose(store)
