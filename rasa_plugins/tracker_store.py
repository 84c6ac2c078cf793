"""`WindowedSQLTrackerStore`: Rasa's SQL tracker store, with a turn costing the same at turn 300 as at turn 5.

Rasa's `SQLTrackerStore.retrieve` loads every event of the conversation's session and replays it, and the
policies, forms and the action-server call then walk the whole tracker again, several times a turn. Measured
(cProfile of the Rasa server, docs/bench.md): loading, replaying and featurising grow linearly with the
conversation, so turn 300 cost 13× turn 1. Nothing KeyMedic predicts needs that much history: its policy is
RulePolicy over short rules (config.yml, data/rules/), and its actions read slots, not old events (the
hand-off's transcript reads the full history from Rasa, bot/handoff/desk.py).

Where the queries run depends on the database. PostgreSQL (the cluster mode, several replicas): in a worker
thread, so that the one event loop serving every conversation goes on while a query waits on the network or
on another replica's lock. SQLite (a single Rasa process, which alone writes the file; WAL readers never
block it): in the event loop itself, as Rasa's own store does. Measured both ways on SQLite (docs/bench.md),
the worker threads cost more than they saved: a query here is a fraction of a millisecond of Python work
that holds the GIL anyway, and handing it to a thread and back made the event loop and the threads take
turns with the GIL; three runs each of 50 conversations at once gave 37–39 msg/s in the loop against
32–37 msg/s in threads, and 24–26 against 26–30 ms of the Rasa server's CPU per turn.

So `retrieve` returns a *window*: the current state, then the events of the last `window_turns` turns.

- **State at the cut.** Every `save` that ends a turn (its last event is `action_listen`) also writes a
  snapshot of the tracker at that event to `keymedic_tracker_snapshots`: the history marks (the newest
  event of each slot, action, form (de)activation and kind of secure form sent, in their order:
  `history_marks`), the active loop's flags, paused, the reminders still pending. `retrieve` takes the
  `window_turns`-th newest snapshot after the session's start and rebuilds the tracker from the marks
  (their own time stamps), then `LoopInterrupted`, `ActionExecutionRejected`, `ConversationPaused` stamped
  with the cut's time and the `ReminderScheduled` events as they were, followed by every stored event from
  the snapshot's `action_listen` on. The marks restore every slot and the active loop, and they answer
  every walk back over `tracker.events` an action makes ("was a wallet named since the last saved key?")
  as the whole session does: without them, a save older than the window was not seen and the old wallet
  was offered again (issue 18; tests/e2e/test_key_update_flow.py). With fewer snapshots than
  `window_turns` (a short conversation, or one whose session just started) it loads the whole session,
  exactly as Rasa does.
- **Saving.** Rasa's `save` decides which events are new by counting the session's events in the database,
  which would lose or duplicate events with a window. This store remembers, on the tracker it returned, how
  many of its events came from storage (the synthetic ones included) and saves exactly the ones after them;
  for a tracker it did not load (a new conversation, a tracker rebuilt by Rasa's API) Rasa's count is
  right and is used.
- **What stays whole.** `retrieve_full_tracker` (Rasa's `GET /conversations/<id>/tracker`, the story export,
  the hand-off's transcript through that endpoint) is Rasa's own: every event of every session. The events
  table is Rasa's, unchanged, so a window is only ever a view.

- **No silent loss (issue 19).** A save or retrieve that fails (a held SQLite lock, a PostgreSQL restart)
  is tried again within the turn (`RETRY_PAUSES_S`, waiting without holding the event loop); if it still
  fails it raises `TrackerStoreUnavailable`, which the channels show the user as "not saved, send it
  again", and counts it in `keymedic_turns_not_saved_total`. Rasa wraps every store in
  `FailSafeTrackerStore`, which on a failed save carries on with an `InMemoryTrackerStore` (the turn is
  answered, then forgotten) and on a failed retrieve starts the conversation over; `PATCHES` (installed with
  the other plug-ins by `rasa_plugins.startup.install`) make it pass this store's errors through instead.

The state a window cannot restore is the active loop's `trigger_message` (the message that activated a form
before the cut), which only `from_trigger_intent` slot mappings read; KeyMedic's domain has none.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    ConversationPaused,
    Event,
    LoopInterrupted,
    ReminderScheduled,
    Restarted,
    SessionStarted,
    SlotSet,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.observability.metrics import TURNS_NOT_SAVED
from rasa_plugins import fast_json, patching

__all__ = [
    "WindowedSQLTrackerStore",
    "DEFAULT_WINDOW_TURNS",
    "RETRY_PAUSES_S",
    "TrackerStoreUnavailable",
    "TrackerDatabaseNotMigrated",
    "PATCHES",
    "RELIED_ON",
    "tracker_state",
    "state_events",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_WINDOW_TURNS = 8
REMINDER_KEEP_S = 24 * 3600  # a reminder whose time passed longer ago has fired (or never will)
# A write meeting another writer's lock waits this long inside SQLite, which blocks the event loop (every
# conversation); longer waits are the retries' business, which sleep without blocking it.
SQLITE_BUSY_TIMEOUT_MS = 250
# The pauses between a failed query and its next try within one turn: with SQLite's busy timeout, a turn
# waits at most about 4 s for the database before the user is told it was not saved.
RETRY_PAUSES_S: tuple[float, ...] = (0.1, 0.4, 1.0, 1.5)
# Connections kept open to a SQLite file. The event loop's queries use one at a time; the pool's overflow
# serves anything that queries from another thread.
SQLITE_POOL_SIZE = 2

# How many of a tracker's events this store loaded or saved; set on the tracker object itself, because the
# same object goes from `retrieve` through the turn to `save` (rasa/core/processor.py `handle_message`).
_STORED = "_keymedic_stored_events"

# KeyMedic's table beside Rasa's `events`, and the index on `events` that makes the session-start lookup one
# seek: both made by the tracker database's migration (bot/store/tracker_migrations, `keymedic db upgrade`),
# which every start runs before Rasa; this store only checks they are there.
_metadata = sa.MetaData()
snapshots = sa.Table(
    "keymedic_tracker_snapshots",
    _metadata,
    sa.Column("sender_id", sa.String(255), primary_key=True),
    # The id, in Rasa's `events` table, of the `action_listen` the state was taken at.
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("state", sa.Text, nullable=False),
)


class TrackerDatabaseNotMigrated(RuntimeError):
    """The tracker database lacks what the windowed store needs: `keymedic db upgrade` was not run on it."""


def _mark_key(event: Event) -> tuple[str, ...] | None:
    """Which mark `event` is the newest of, or None when windows need not keep it (see `history_marks`)."""
    if isinstance(event, SlotSet):
        return ("slot", event.key)
    if isinstance(event, (AllSlotsReset, Restarted)):
        return (event.type_name,)
    if isinstance(event, ActionExecuted) and event.action_name and event.action_name != ACTION_LISTEN_NAME:
        return ("action", event.action_name)
    if isinstance(event, ActiveLoop):
        return ("active_loop", str(event.name))
    if isinstance(event, BotUttered):
        custom = (event.data or {}).get("custom")
        if isinstance(custom, dict):
            return ("bot", str(custom.get("type")), str(custom.get("wallet_id")))
    return None


def history_marks(tracker: DialogueStateTracker) -> list[Event]:
    """The newest event of each kind that a look back over the session can ask about, in their order.

    An action that walks back through `tracker.events` ("was a wallet named since the last saved key?",
    actions/key_update.py) must find the same answer in a window as in the whole session, or the bot acts
    differently with this store than with Rasa's (issue 18: the old wallet was offered again once the save
    was older than the window). A walk back stops at the newest event that answers it, so a window keeps,
    before its turns, the newest event of each kind, in the order they happened: of each slot its last
    `SlotSet`, of each action its last run, of each form its last activation (and the last deactivation),
    and of each kind of custom payload the bot sent (the secure form for a wallet) its last message; and the
    last `AllSlotsReset` and `Restarted`, so that replayed in order they leave every slot at its value. The
    session's other events (user messages, other bot messages) are not kept: a walk back for one of those
    ends within the window's turns in KeyMedic's actions. The walk is over `tracker.events`, as the actions'
    is, not `applied_events()`, which drops a form's intermediate events.
    """
    newest: dict[tuple[str, ...], tuple[int, Event]] = {}
    for position, event in enumerate(tracker.events):
        if isinstance(event, SessionStarted):
            newest = {}  # Rasa's store loads a session from here on (and so does this one)
            continue
        key = _mark_key(event)
        if key is not None:
            newest[key] = (position, event)
    return [event for _, event in sorted(newest.values(), key=lambda found: found[0])]


def tracker_state(tracker: DialogueStateTracker) -> dict[str, Any]:
    """What a window must restore: the history marks (`history_marks`), non-initial slot values, the active
    loop's flags, paused, reminders."""
    loop = tracker.active_loop
    active = None
    if loop is not None and loop.name:
        flags = {"is_interrupted": bool(loop.is_interrupted), "rejected": bool(loop.rejected)}
        active = {"name": loop.name, **flags}
    # Rasa fires a reminder only if its `ReminderScheduled` is still among the tracker's applied events
    # (rasa/core/processor.py `_is_reminder_still_valid`), so reminders scheduled before the cut travel with
    # the state: the latest per name, while its trigger time is less than `REMINDER_KEEP_S` ago.
    reminders: dict[str, ReminderScheduled] = {}
    for event in tracker.applied_events():
        if isinstance(event, ReminderScheduled):
            reminders[event.name] = event
    oldest = time.time() - REMINDER_KEEP_S
    return {
        "marks": [event.as_dict() for event in history_marks(tracker)],
        "slots": {
            name: slot.value for name, slot in tracker.slots.items() if slot.value != slot.initial_value
        },
        "active_loop": active,
        "paused": tracker.is_paused(),
        "reminders": [
            event.as_dict() for event in reminders.values() if event.trigger_date_time.timestamp() >= oldest
        ],
    }


def state_events(state: dict[str, Any], timestamp: float | None) -> list[Event]:
    """Events that bring a fresh tracker to `state` (see `tracker_state`): the history marks with their own
    time stamps, then what they leave out, stamped `timestamp`."""
    marks = [Event.from_parameters(mark) for mark in state.get("marks") or ()]
    replayed: dict[str, Any] = {}
    for mark in marks:
        if isinstance(mark, (AllSlotsReset, Restarted)):
            replayed.clear()
        elif isinstance(mark, SlotSet):
            replayed[mark.key] = mark.value
    events: list[Event] = list(marks)
    # A snapshot taken before the marks existed has none: its slots are all set here, at the cut.
    events += [
        SlotSet(name, value, timestamp=timestamp)
        for name, value in (state.get("slots") or {}).items()
        if name not in replayed or replayed[name] != value
    ]
    loop = state.get("active_loop")
    replayed_loop = next((mark.name for mark in reversed(marks) if isinstance(mark, ActiveLoop)), None)
    if (loop or {}).get("name") != replayed_loop:
        # Only when the marks do not already end in it: a second activation at the cut would read as the
        # form starting there to a walk back (actions/key_update.py `_form_sent_for`).
        events.append(ActiveLoop(loop["name"] if loop else None, timestamp=timestamp))
    if loop and loop.get("is_interrupted"):
        events.append(LoopInterrupted(True, timestamp=timestamp))
    if loop and loop.get("rejected"):
        events.append(ActionExecutionRejected(loop["name"], timestamp=timestamp))
    if state.get("paused"):
        events.append(ConversationPaused(timestamp=timestamp))
    # Reminders keep their own time stamps: replaying one changes no state.
    events.extend(Event.from_parameters(reminder) for reminder in state.get("reminders") or ())
    return events


def _tuned_sqlite_engine(engine: sa.engine.Engine) -> sa.engine.Engine:
    """The same SQLite file behind a pool of open connections, each tuned (`_tune_sqlite`) once as it opens.

    SQLAlchemy 1.4 opens a SQLite file with `NullPool`: every `session_scope` (two a turn) connected,
    ran the PRAGMAs below and closed again, which the profile of a 50-conversation run put at about a fifth of
    the Rasa server's busy time (docs/bench.md). A pooled connection is used by one thread at a time, so
    sqlite3's same-thread check can be off. An in-memory database stays as Rasa made it: each new
    connection to it would be another, empty database.
    """
    if engine.url.database in (None, "", ":memory:"):
        _tune_sqlite(engine)
        return engine
    engine.dispose()
    pooled = sa.create_engine(
        engine.url,
        poolclass=sa.pool.QueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        connect_args={"check_same_thread": False},
    )
    _tune_sqlite(pooled)
    return pooled


def _tune_sqlite(engine: sa.engine.Engine) -> None:
    """The SQLite settings KeyMedic's own database uses (bot/store/db.py): WAL, so a reader never waits for
    the writer; `synchronous = NORMAL`, which in WAL mode survives a crash of the process and syncs at
    checkpoints instead of on every commit (Rasa's default syncs each turn's commit, measured at about a
    third of the store's time per turn); a busy timeout, so that a write meeting another writer (a second
    process on the file by mistake, a maintenance script) waits a little instead of failing at once with
    "database is locked" — briefly, since it waits in the event loop (the store's retries wait longer,
    without holding the loop)."""

    @sa.event.listens_for(engine, "connect")  # type: ignore[misc]
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def _before_every_id(event_id: int | None) -> int:
    """`event_id`, or 0 for "no bound": the ids of Rasa's events table start at 1 (an autoincrement primary
    key on SQLite and PostgreSQL), so `id > 0` and `id >= 0` hold for every event."""
    return 0 if event_id is None else event_id


class _WindowQueries:
    """The statements of a turn, built once. The three reads of a window as plain SQL: the session's start,
    the snapshot at the cut, and the events from there on; and the two inserts of a save. Run on the session's
    connection, they skip the ORM's query building and execution, which were most of a retrieve's time under
    load (py-spy; docs/bench.md, "Issue 14, round 2"); the same indexes serve the reads
    (`keymedic_events_by_sender_and_type`, the snapshots' primary key, the events' primary key and
    `ix_events_sender_id`)."""

    def __init__(self, events: sa.Table, window_turns: int) -> None:
        events_table = events.name
        self.insert_event = events.insert()
        self.insert_snapshot = snapshots.insert()
        self.session_start = sa.text(
            f"SELECT max(id) FROM {events_table} WHERE sender_id = :sender_id AND type_name = :type_name"
        )
        self.cut = sa.text(
            f"SELECT event_id, state FROM {snapshots.name} "
            "WHERE sender_id = :sender_id AND event_id > :after_id "
            f"ORDER BY event_id DESC LIMIT 1 OFFSET {max(window_turns - 1, 0)}"
        )
        self.events = sa.text(
            f"SELECT data FROM {events_table} WHERE sender_id = :sender_id AND id >= :from_id ORDER BY id"
        )


class TrackerStoreUnavailable(Exception):
    """The tracker store failed every try within the turn: the turn is not stored; the user must be told."""


class WindowedSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store whose `retrieve` loads the state plus the last `window_turns` turns.

    Configured in endpoints.yml like Rasa's (`dialect`, `db`, `url`, …) with `type:` naming this class and,
    optionally, `window_turns` (0 turns the window off: every retrieve loads the whole session).
    """

    def __init__(self, *args: Any, window_turns: int | str = DEFAULT_WINDOW_TURNS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window_turns = int(window_turns)
        if self.window_turns < 0:
            raise ValueError(f"window_turns must be 0 or more, got {window_turns!r}")
        engine: sa.engine.Engine = self.__dict__["engine"]  # set by Rasa's __init__, untyped there
        on_sqlite = engine.dialect.name == "sqlite"
        self._queries_in_thread = not on_sqlite
        if on_sqlite:
            self.engine = _tuned_sqlite_engine(engine)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._queries = _WindowQueries(self.SQLEvent.__table__, self.window_turns)
        if not sa.inspect(self.engine).has_table(snapshots.name):
            raise TrackerDatabaseNotMigrated(
                f"the tracker database has no {snapshots.name} table: run `keymedic db upgrade` (it migrates "
                "the tracker database too; `keymedic run` and `keymedic cluster` do so before Rasa starts)"
            )
        if not all(patch.applied() for patch in PATCHES):
            # Not started through `python -m rasa_plugins.run` (`rasa shell`, a test's own Rasa): Rasa's
            # FailSafeTrackerStore would answer from memory when this store fails.
            logger.warning(
                "Rasa plug-ins not installed (rasa_plugins.startup.install): failed saves fall back"
            )

    async def _run(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(*args)`: in a worker thread for a networked database, in the event loop for SQLite (see the
        module's docstring); tried again after each of `RETRY_PAUSES_S` while the database fails."""
        for pause in (*RETRY_PAUSES_S, None):
            try:
                if self._queries_in_thread:
                    return await asyncio.to_thread(work, *args)
                return work(*args)
            except sa.exc.SQLAlchemyError as error:
                # The error's type only: its message quotes the statement and its parameters (event data).
                if pause is None:
                    logger.error(
                        "tracker store: %s failed every try (%s)", work.__name__, type(error).__name__
                    )
                    raise TrackerStoreUnavailable(work.__name__) from error
                logger.warning(
                    "tracker store: %s failed (%s), trying again", work.__name__, type(error).__name__
                )
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    # -- reading ------------------------------------------------------------------------------------------

    def _session_start_id(self, connection: Any, sender_id: str) -> int | None:
        found = connection.execute(
            self._queries.session_start, {"sender_id": sender_id, "type_name": SessionStarted.type_name}
        ).scalar()
        return int(found) if found is not None else None

    def _cut(
        self, connection: Any, sender_id: str, start_id: int | None
    ) -> tuple[int, dict[str, Any]] | None:
        """The snapshot `window_turns` turns back in this session, or None when there are not that many."""
        if self.window_turns == 0:
            return None
        row = connection.execute(
            self._queries.cut, {"sender_id": sender_id, "after_id": _before_every_id(start_id)}
        ).first()
        return None if row is None else (int(row.event_id), fast_json.loads(row.state))

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The tracker of the latest session: its state at the window's start, then the window's events."""
        return await self._run(self._retrieve_window, sender_id)

    def _retrieve_window(self, sender_id: str) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            connection = session.connection()
            start_id = self._session_start_id(connection, sender_id)
            cut = self._cut(connection, sender_id, start_id)
            lower = cut[0] if cut is not None else start_id
            rows = connection.execute(
                self._queries.events, {"sender_id": sender_id, "from_id": _before_every_id(lower)}
            )
            events = [fast_json.loads(row.data) for row in rows]
        if not self.domain or not events:
            return None
        prefix: list[dict[str, Any]] = []
        if cut is not None:
            prefix = [event.as_dict() for event in state_events(cut[1], events[0].get("timestamp"))]
        tracker = DialogueStateTracker.from_dict(sender_id, prefix + events, self.domain.slots)
        setattr(tracker, _STORED, len(tracker.events))
        return tracker

    # -- writing ------------------------------------------------------------------------------------------

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        stored = getattr(tracker, _STORED, None)
        if stored is None:
            return super()._additional_events(session, tracker)
        return itertools.islice(tracker.events, stored, None)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish the events `save` is about to store (Rasa's diff against a re-read tracker would compare
        two windows)."""
        if self.event_broker is None:
            return
        stored = getattr(tracker, _STORED, None)
        if stored is None:
            await super().stream_events(tracker)
            return
        new = list(itertools.islice(tracker.events, stored, None))
        await self._stream_new_events(self.event_broker, new, tracker.sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker's new events and, when they end a turn, the snapshot at its `action_listen`;
        raise `TrackerStoreUnavailable` (and count it) when the database fails every try."""
        await self.stream_events(tracker)
        try:
            await self._run(self._save_new_events, tracker)
        except TrackerStoreUnavailable:
            TURNS_NOT_SAVED.inc()
            raise

    def _save_new_events(self, tracker: DialogueStateTracker) -> None:
        with self.session_scope() as session:
            rows = [
                _event_row(tracker.sender_id, event) for event in self._additional_events(session, tracker)
            ]
            if rows:
                # One executemany for all but the last event, then the last alone for its id (the snapshot's
                # key): two statements a turn instead of the ORM's one INSERT per event. Ids rise in
                # insertion order on SQLite and PostgreSQL, which is the order `retrieve` reads them back in.
                # Statements built once, run on the session's connection (no ORM execution per statement).
                connection = session.connection()
                if len(rows) > 1:
                    connection.execute(self._queries.insert_event, rows[:-1])
                last_id = connection.execute(self._queries.insert_event, rows[-1]).inserted_primary_key[0]
                last = tracker.events[-1]
                if isinstance(last, ActionExecuted) and last.action_name == ACTION_LISTEN_NAME:
                    connection.execute(
                        self._queries.insert_snapshot,
                        {
                            "sender_id": tracker.sender_id,
                            "event_id": last_id,
                            "state": fast_json.dumps(tracker_state(tracker)),
                        },
                    )
            session.commit()
        setattr(tracker, _STORED, len(tracker.events))


_failsafe_save = FailSafeTrackerStore.save
_failsafe_retrieve = FailSafeTrackerStore.retrieve
_failsafe_retrieve_full = FailSafeTrackerStore.retrieve_full_tracker


def _strict(store: FailSafeTrackerStore) -> WindowedSQLTrackerStore | None:
    primary = getattr(store, "_tracker_store", None)
    return primary if isinstance(primary, WindowedSQLTrackerStore) else None


async def _save_without_fallback(self: FailSafeTrackerStore, tracker: DialogueStateTracker) -> None:
    strict = _strict(self)
    if strict is None:
        await _failsafe_save(self, tracker)
        return
    await strict.save(tracker)


async def _retrieve_without_fallback(
    self: FailSafeTrackerStore, sender_id: str
) -> DialogueStateTracker | None:
    strict = _strict(self)
    if strict is None:
        return await _failsafe_retrieve(self, sender_id)
    return await strict.retrieve(sender_id)


async def _retrieve_full_without_fallback(
    self: FailSafeTrackerStore, sender_id: str
) -> DialogueStateTracker | None:
    strict = _strict(self)
    if strict is None:
        return await _failsafe_retrieve_full(self, sender_id)
    return await strict.retrieve_full_tracker(sender_id)


# The Rasa functions `WindowedSQLTrackerStore` overrides or calls beyond Rasa's public API, with the SHA-256
# of their source in Rasa 3.6.21 (`patching.source_sha256`): not replaced, but written against; the unit test
# (tests/unit/test_rasa_plugins.py) fails when one changes, as for the replacements below.
RELIED_ON: dict[tuple[type, str], str] = {
    (SQLTrackerStore, "__init__"): "64e704d159dfa35b86175cccdc9d08b05cbf91b2e0779bccf115671106ad9314",
    (SQLTrackerStore, "retrieve"): "0d99846daced97d3dee3fae5eecfef6179c7afaeb872b68bbe064bbd65223641",
    (SQLTrackerStore, "save"): "57165e46eab3de0866e77f03df0bf7fd5eac2c1de617ed431b934c9a4edfeef6",
    (SQLTrackerStore, "_additional_events"): (
        "d22f99eb863acb07afee63d9fe3a04ca8464251e67a43eb7d36c2d65ffc1653f"
    ),
    (TrackerStore, "stream_events"): "efd3615f5340218a9edb4f386ed208d38f0d413d197eadc8b386d34fc8e4399c",
    (TrackerStore, "_stream_new_events"): (
        "a3990c70850759b80da1ecac9b2e585fa7c6a0ba6f1f741b401410186fd326e8"
    ),
}


# Rasa's `FailSafeTrackerStore` passes a `WindowedSQLTrackerStore`'s errors through instead of answering
# from memory (see the module's docstring).
PATCHES = (
    patching.Patch(
        FailSafeTrackerStore,
        "save",
        _save_without_fallback,
        "8426dc08f58d71102f7c031ade8a26b0b1458c8bae162be7b091d288699a5e9b",
    ),
    patching.Patch(
        FailSafeTrackerStore,
        "retrieve",
        _retrieve_without_fallback,
        "35d77318b0cc79771af3c667bc8c34cd5a56e494eaa8c4d713fd754b9d00d276",
    ),
    patching.Patch(
        FailSafeTrackerStore,
        "retrieve_full_tracker",
        _retrieve_full_without_fallback,
        "5272a6be0919b511c874fde07a8666777d09f5a11ba29e66f1f923f5ef85e2a0",
    ),
)


def _event_row(sender_id: str, event: Event) -> dict[str, Any]:
    """The columns of Rasa's `events` table for one event, as Rasa's own `save` fills them."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
        "action_name": data.get("name"),
        "data": fast_json.dumps(data),
    }
