"""A `SupportDesk` stand-in for action tests: same async methods, answers set by the test, calls recorded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rasa_sdk import Tracker

from bot.assistant import KeyCheck, KeyUpdated, SyncReport, WalletView
from bot.store.model import RemovalImpact
from bot.store.services import NotFound
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable


def diagnosis(exchange: str = "kraken", **statuses: Status) -> Diagnosis:
    """A diagnosis where every item passes unless named: `diagnosis(no_ip_restriction=Status.FAIL)`."""
    items = []
    for item in Item:
        status = statuses.get(item.value, Status.PASS)
        fix = f"fix for {item.value}" if status is Status.FAIL else None
        items.append(ItemOutcome(item=item, status=status, fix=fix, raw_code="E1" if fix else None))
    return Diagnosis(exchange=exchange, items=tuple(items))


def unavailable(exchange: str = "kraken") -> Diagnosis:
    items = tuple(ItemOutcome(item=item, status=Status.UNKNOWN) for item in Item)
    return Diagnosis(
        exchange=exchange, items=items, unavailable=Unavailable(kind="server_error", message="HTTP 503")
    )


@dataclass
class FakeDesk:
    wallet_list: list[WalletView] = field(default_factory=list)
    check: Diagnosis | Exception = field(default_factory=diagnosis)
    update: KeyUpdated | Exception = field(default_factory=lambda: KeyUpdated(1, "****abcd", 77))
    impact: RemovalImpact = field(default_factory=lambda: RemovalImpact(3, 2, 1, 2))
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    # The resyncs on this user's wallets; any other id is refused as the real desk refuses it.
    own_sync_runs: set[int] = field(default_factory=lambda: {77})

    async def wallets(self, channel: str, sender_id: str) -> list[WalletView]:
        return list(self.wallet_list)

    async def connect_wallet(self, channel: str, sender_id: str, exchange: str) -> WalletView:
        self.calls.append(("connect_wallet", (exchange,)))
        return WalletView(99, exchange, "default", None, None)

    async def credential_form(
        self, channel: str, sender_id: str, conversation_id: str, wallet_id: int
    ) -> dict[str, Any]:
        self.calls.append(("credential_form", (wallet_id,)))
        return {
            "type": "keymedic_credential_form",
            "form_url": "http://web/intake/form?token=it_x",
            "token": "it_x",
        }

    async def check_key(
        self, channel: str, sender_id: str, conversation_id: str, wallet_id: int, reference: str
    ) -> KeyCheck:
        self.calls.append(("check_key", (wallet_id, reference)))
        if isinstance(self.check, Exception):
            raise self.check
        return KeyCheck(diagnosis=self.check, record_id=1)

    async def update_key(self, channel: str, sender_id: str, wallet_id: int, reference: str) -> KeyUpdated:
        self.calls.append(("update_key", (wallet_id, reference)))
        if isinstance(self.update, Exception):
            raise self.update
        return self.update

    async def update_confirmed_key(
        self,
        channel: str,
        sender_id: str,
        conversation_id: str,
        wallet_id: int,
        reference: str,
        confirmed: Iterable[Item],
    ) -> KeyUpdated:
        self.calls.append(
            ("update_confirmed_key", (wallet_id, reference, sorted(i.value for i in confirmed)))
        )
        if isinstance(self.update, Exception):
            raise self.update
        return self.update

    async def sync_report(self, channel: str, sender_id: str, sync_run_id: int) -> SyncReport:
        self.calls.append(("sync_report", (sender_id, sync_run_id)))
        if sync_run_id not in self.own_sync_runs:
            raise NotFound(f"this user has no sync run {sync_run_id}")
        return SyncReport(sync_run_id, "succeeded", 40, 0, 0, None)

    async def removal_impact(self, channel: str, sender_id: str, wallet_id: int) -> RemovalImpact:
        return self.impact

    async def open_ticket(self, channel: str, sender_id: str, conversation_id: str, **kwargs: Any) -> int:
        self.calls.append(("open_ticket", (kwargs,)))
        return 12


def tracker(
    slots: dict[str, Any] | None = None,
    *,
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> Tracker:
    """A tracker for the demo user on the REST channel, with these slots and latest message, after the
    events of `history`."""
    return Tracker(
        sender_id="demo",
        slots=slots or {},
        latest_message={"intent": {"name": intent}, "entities": entities or [], "text": ""},
        events=[*(history or []), {"event": "user", "text": "", "input_channel": "rest", "parse_data": {}}],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


@dataclass
class FakeHandoff:
    approved: bool = False
    transcripts: list[str] = field(default_factory=list)

    async def removal_approved(self, conversation_id: str) -> bool:
        return self.approved

    async def record_transcript(self, conversation_id: str, events: Any) -> int:
        self.transcripts.append(conversation_id)
        return len(list(events))
