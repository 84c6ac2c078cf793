"""A tracker store and a KeyMedic database with known outcomes, for the report and the job figures.

The tracker store is written by Rasa's own `SQLTrackerStore` (real events, Rasa's schema), the KeyMedic
database through its tables. What happened, in November 2026 unless said otherwise:

| conversation | exchange | triage | key updated | resync | support | fallbacks |
|---|---|---|---|---|---|---|
| alice, Nov 2 | kraken | yes | yes | succeeded after 9 min | no | — |
| bob, Nov 3 | coinbase | yes | yes | failed | ticket | — |
| carol, Nov 4 | kraken | yes | no | — | ticket | "asdf qwerty" |
| dave, Nov 5 | — | no | — | — | — | "asdf qwerty", a pasted secret |
| alice, Nov 20 (2nd session) | kraken | yes | yes | succeeded after 3 min | no | — |
| erin, Dec 2 | kraken | yes | yes | succeeded after 1 min | no | — |
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bot.store import orm
from bot.store.model import CredentialStatus, SyncStatus

SECRET_PASTE = "here it is Zx9kQ2mW7pL4vN8rT1yB6cH3jF5gD0sAq"
SECRET = "Zx9kQ2mW7pL4vN8rT1yB6cH3jF5gD0sAq"


def at(day: int, hour: int = 10, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


# sender -> list of sessions: (start, [(offset_s, kind, value)]) with kind user:<intent>, slot, fallback
SESSIONS: dict[str, list[tuple[datetime, list[tuple[int, str, str]]]]] = {
    "alice": [
        (at(2), [(0, "user:greet", "hi"), (10, "user:invalid_key_error", "my kraken key is invalid"),
                 (11, "slot:exchange", "kraken")]),
        (at(20), [(0, "user:update_key", "I want to swap my kraken key"), (1, "slot:exchange", "kraken")]),
    ],
    "bob": [(at(3), [(0, "user:key_revoked", "coinbase revoked my key"), (1, "slot:exchange", "coinbase"),
                     (90, "slot:csat_rating", "4")])],
    "carol": [
        (at(4), [(0, "user:sync_stopped", "kraken stopped syncing"), (1, "slot:exchange", "kraken"),
                 (30, "fallback", "asdf qwerty"), (60, "user:request_human", "a person please"),
                 (900, "slot:csat_rating", "2")]),
    ],
    "dave": [(at(5), [(0, "user:greet", "hello"), (5, "fallback", "asdf   QWERTY"),
                      (9, "fallback", SECRET_PASTE), (20, "slot:csat_rating", "9")])],
    "erin": [(at(2, month=12), [(0, "user:invalid_key_error", "kraken says invalid key"),
                                (1, "slot:exchange", "kraken")])],
}  # fmt: skip


def _events(start: datetime, steps: list[tuple[int, str, str]]) -> list[Any]:
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered

    t0 = start.timestamp()
    events: list[Any] = [
        ActionExecuted("action_session_start", timestamp=t0),
        SessionStarted(timestamp=t0),
        ActionExecuted("action_listen", timestamp=t0),
    ]
    for offset, kind, value in steps:
        t = t0 + offset
        if kind.startswith("user:"):
            intent = kind.split(":", 1)[1]
            events.append(UserUttered(value, {"name": intent, "confidence": 0.9}, timestamp=t))
            events.append(BotUttered("ok", timestamp=t + 0.5))
            events.append(ActionExecuted("action_listen", timestamp=t + 0.6))
        elif kind == "slot:exchange":
            events.append(SlotSet("exchange", value, timestamp=t))
        elif kind == "slot:csat_rating":  # CSAT (issue 16): what action_record_csat sets
            events.append(SlotSet("csat_rating", value, timestamp=t))
        elif kind == "fallback":
            events.append(UserUttered(value, {"name": "nlu_fallback", "confidence": 0.2}, timestamp=t))
            events.append(ActionExecuted("action_default_fallback", timestamp=t + 0.3))
            events.append(BotUttered("Sorry, I didn't get that.", timestamp=t + 0.4))
            events.append(ActionExecuted("action_listen", timestamp=t + 0.6))
    return events


async def seed_tracker(store: Any) -> None:
    """Write every session through Rasa's tracker store (`SQLTrackerStore`)."""
    from rasa.shared.core.trackers import DialogueStateTracker

    for sender, sessions in SESSIONS.items():
        events: list[Any] = []
        for start, steps in sessions:
            events += _events(start, steps)
        await store.save(DialogueStateTracker.from_events(sender, events))


def seed_keymedic(engine: Engine) -> None:
    """Users, wallets, key updates, sync runs, tickets, diagnoses and outbox rows matching `SESSIONS`."""
    now = at(1)
    with engine.begin() as db:
        users = {}
        for handle in ("alice", "bob", "erin", "carol"):
            users[handle] = db.execute(
                insert(orm.users).values(handle=handle, display_name=handle, created_at=now)
            ).inserted_primary_key[0]
        wallets = {}
        for handle, exchange in (
            ("alice", "kraken"),
            ("bob", "coinbase"),
            ("erin", "kraken"),
            ("carol", "kraken"),
        ):
            wallets[handle] = db.execute(
                insert(orm.wallets).values(
                    user_id=users[handle],
                    exchange=exchange,
                    account_label="default",
                    display_name=exchange,
                    created_at=now,
                )
            ).inserted_primary_key[0]

        def credential(handle: str, version: int, conversation: str, activated: datetime, status: Any) -> int:
            sealed = status is not CredentialStatus.RETIRED
            return int(
                db.execute(
                    insert(orm.credentials).values(
                        wallet_id=wallets[handle],
                        version=version,
                        status=status,
                        key_id="k1" if sealed else None,
                        ciphertext=b"sealed" if sealed else None,
                        api_key_masked="****abcd",
                        created_at=activated - timedelta(minutes=1),
                        activated_at=activated,
                        conversation_id=conversation,
                        retired_at=None if sealed else activated + timedelta(days=1),
                    )
                ).inserted_primary_key[0]
            )

        def sync(
            handle: str, credential_id: int, started: datetime, minutes: int, status: SyncStatus
        ) -> None:
            db.execute(
                insert(orm.sync_runs).values(
                    wallet_id=wallets[handle],
                    idempotency_key=f"k{credential_id}",
                    status=status,
                    reason="t",
                    credential_id=credential_id,
                    attempt=1,
                    created_at=started,
                    started_at=started,
                    heartbeat_at=started,
                    finished_at=started + timedelta(minutes=minutes),
                    added=1,
                    updated=0,
                    unchanged=0,
                    error=None if status is SyncStatus.SUCCEEDED else "AuthRejected",
                )
            )

        # alice, first session: triaged 10:00:10, key at 10:05, resync done 10:09:10 (9 min after triage)
        first = credential("alice", 1, "alice", at(2, 10, 5), CredentialStatus.RETIRED)
        db.execute(
            insert(orm.sync_runs).values(
                wallet_id=wallets["alice"],
                idempotency_key="alice-1",
                status=SyncStatus.SUCCEEDED,
                reason="t",
                credential_id=first,
                attempt=1,
                created_at=at(2, 10, 5),
                started_at=at(2, 10, 5),
                finished_at=at(2, 10, 9) + timedelta(seconds=10),
                added=40,
                updated=0,
                unchanged=0,
            )
        )
        second = credential("alice", 2, "alice", at(20, 10, 1), CredentialStatus.ACTIVE)
        sync("alice", second, at(20, 10, 1), 2, SyncStatus.SUCCEEDED)  # done 10:03, 3 min after triage
        bob = credential("bob", 1, "bob", at(3, 10, 4), CredentialStatus.ACTIVE)
        sync("bob", bob, at(3, 10, 4), 1, SyncStatus.FAILED)
        erin = credential("erin", 1, "erin", at(2, 10, 0, month=12), CredentialStatus.ACTIVE)
        sync("erin", erin, at(2, 10, 0, month=12), 1, SyncStatus.SUCCEEDED)
        db.execute(
            insert(orm.sync_runs).values(
                wallet_id=wallets["carol"],
                idempotency_key="carol-q",
                status=SyncStatus.QUEUED,
                reason="t",
                attempt=0,
                created_at=at(4),
                added=0,
                updated=0,
                unchanged=0,
            )
        )

        for handle, moment in (("bob", at(3, 10, 20)), ("carol", at(4, 10, 1))):
            ticket = db.execute(
                insert(orm.tickets).values(
                    conversation_id=handle,
                    user_id=users[handle],
                    wallet_id=wallets[handle],
                    reason="user asked for a person",
                    status="open",
                    payload={},
                    created_at=moment,
                    updated_at=moment,
                )
            ).inserted_primary_key[0]
            delivered = handle == "bob"
            db.execute(
                insert(orm.outbox).values(
                    delivery_id=f"kmt_{handle}",
                    reason="ticket_opened",
                    payload={},
                    conversation_id=handle,
                    ticket_id=ticket,
                    status="delivered" if delivered else "pending",
                    attempts=1,
                    next_attempt_at=moment,
                    created_at=moment,
                    delivered_at=moment if delivered else None,
                )
            )

        def diagnosis(handle: str, exchange: str, moment: datetime, statuses: dict[str, str]) -> None:
            items = [{"item": item, "status": status} for item, status in statuses.items()]
            db.execute(
                insert(orm.diagnoses).values(
                    wallet_id=wallets[handle],
                    exchange=exchange,
                    all_passed=not statuses or all(s == "pass" for s in statuses.values()),
                    outcome={"items": items},
                    conversation_id=handle,
                    created_at=moment,
                )
            )

        diagnosis("alice", "kraken", at(2, 10, 3), {"read_permission": "fail", "format": "pass"})
        diagnosis("alice", "kraken", at(2, 10, 4), {"read_permission": "pass", "format": "pass"})
        diagnosis(
            "bob",
            "coinbase",
            at(3, 10, 3),
            {"no_trade_or_withdraw": "fail", "no_ip_restriction": "unknown", "format": "pass"},
        )
        diagnosis("carol", "kraken", at(4, 10, 0), {"read_permission": "fail", "secret_ok": "fail"})
        diagnosis("erin", "kraken", at(1, 9, 0, month=12), {"has_activity": "unknown"})
