"""`SupportDesk`: the conversation's use cases on top of the store, the live diagnosis and the job queue.

Every method is async and runs its database work in a worker thread, because the action server is one
asyncio loop serving every conversation: a blocking query there would stall them all. A user is named by the
channel they talk on and their id there (the REST channel's sender id, later a Slack user or the widget's
verified JWT subject); `bot.store.services.user_for_channel` maps that to a KeyMedic user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import IntegrityError

from bot.config import Settings, load_settings
from bot.diagnosis import diagnose as live_diagnose
from bot.exchange_ids import EXCHANGE_IDS, display_name
from bot.handoff.services import ticket_opened
from bot.intake import TokenError, credential_form_payload, inspect_intake_token, issue_intake_token
from bot.jobs import enqueue_outbox_delivery, enqueue_resync
from bot.store import services
from bot.store.model import Ticket, utcnow
from bot.store.services import NotFound
from bot.store.unit_of_work import SqlAlchemyUnitOfWork, shared_uow_factory
from bot.types.diagnosis import Diagnosis, Item

if TYPE_CHECKING:
    from bot.store.model import RemovalImpact
    from bot.types.credentials import Credentials

__all__ = ["SupportDesk", "WalletView", "KeyCheck", "KeyUpdated", "SyncReport", "DiagnoseFn"]

DiagnoseFn = Callable[..., Awaitable[Diagnosis]]
_T = TypeVar("_T")

# The key update form asks for the key again after every side question while it is active. Within this
# long of issuing a form link, the same link (if still unused) is handed out again instead of a new token
# per ask — a write transaction on every such turn (about 10 ms of the ask action's time, docs/bench.md).
# Short, so the link's "10 minutes" stays true to within a minute.
FORM_LINK_REUSE = timedelta(minutes=1)


@dataclass(frozen=True)
class WalletView:
    """A wallet as the conversation shows it: no secret, the key only masked."""

    wallet_id: int
    exchange: str
    account_label: str
    masked_key: str | None
    last_synced_at: datetime | None

    @property
    def title(self) -> str:
        name = display_name(self.exchange) if self.exchange in EXCHANGE_IDS else self.exchange
        return name if self.account_label == "default" else f"{name} ({self.account_label})"


@dataclass(frozen=True)
class KeyCheck:
    """A live test of the key behind an intake reference, as recorded."""

    diagnosis: Diagnosis
    record_id: int


@dataclass(frozen=True)
class KeyUpdated:
    """The verified key is now the wallet's; its resync is queued."""

    wallet_id: int
    masked_key: str
    sync_run_id: int


@dataclass(frozen=True)
class SyncReport:
    """Where a resync stands, and what it did once finished."""

    sync_run_id: int
    status: str  # queued, running, succeeded, failed
    added: int
    updated: int
    unchanged: int
    error: str | None
    # The wallet's exchange: a report asked for by id (a reminder, `/ask_sync_status{…}`) names it itself.
    exchange: str = ""

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


class SupportDesk:
    """The use cases of the support conversation. Collaborators default to the real ones; tests pass fakes."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        diagnose: DiagnoseFn | None = None,
        enqueue_resync: Callable[[int], None] | None = None,
        enqueue_delivery: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._diagnose = diagnose
        self._enqueue = enqueue_resync
        self._enqueue_delivery = enqueue_delivery
        # (user, conversation, wallet) -> the form token last issued and when; read and written in threads.
        self._form_links: dict[tuple[int, str, int], tuple[str, datetime]] = {}
        self._form_links_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def _uow(self) -> SqlAlchemyUnitOfWork:
        # Built on first use, not in __init__: rasa_sdk instantiates every action at import time. One engine
        # and one cached key ring per process, shared with the hand-off desk (`shared_uow_factory`).

        return shared_uow_factory(self.settings)()

    async def _in_thread(self, work: Callable[[], _T]) -> _T:
        return await asyncio.to_thread(work)

    def _user_id(self, channel: str, sender_id: str, *, create: bool = False) -> int | None:
        uow = self._uow()
        with uow:
            user = services.user_for_channel(uow, channel, sender_id)
            if user is None and create:
                # Someone KeyMedic does not know yet (a new REST sender in a local run): a user with no
                # wallets, created only when they start connecting an exchange.
                user = services.ensure_user(uow, f"{channel}:{sender_id}")
                services.link_identity(uow, user, channel=channel, external_id=sender_id)
                uow.commit()
            return user.id if user is not None else None

    def _owns(self, uow: SqlAlchemyUnitOfWork, user_id: int | None, wallet_id: int) -> bool:
        wallet = uow.wallets.get(wallet_id)
        return user_id is not None and wallet is not None and wallet.user_id == user_id

    def _owned_wallet(self, uow: SqlAlchemyUnitOfWork, user_id: int | None, wallet_id: int) -> None:
        """Raises `NotFound` unless the wallet is this user's: one error for a missing wallet and another
        user's, so an id typed into the chat tells nothing about who else has one."""
        if not self._owns(uow, user_id, wallet_id):
            raise NotFound(f"this user has no wallet {wallet_id}")

    # -- wallets -------------------------------------------------------------------------------------------

    async def wallets(self, channel: str, sender_id: str) -> list[WalletView]:
        """The user's wallets, in the order they were connected; empty for a stranger."""

        def work() -> list[WalletView]:
            user_id = self._user_id(channel, sender_id)
            if user_id is None:
                return []
            uow = self._uow()
            with uow:
                views = []
                for wallet in uow.wallets.for_user(user_id):
                    assert wallet.id is not None
                    active = uow.credentials.active(wallet.id)
                    views.append(
                        WalletView(
                            wallet_id=wallet.id,
                            exchange=wallet.exchange,
                            account_label=wallet.account_label,
                            masked_key=active.api_key_masked if active is not None else None,
                            last_synced_at=wallet.last_synced_at,
                        )
                    )
                return views

        return await self._in_thread(work)

    async def connect_wallet(self, channel: str, sender_id: str, exchange: str) -> WalletView:
        """The user's wallet on this exchange, created (without a key) when they have none there yet — the
        article's "if the exchange isn't connected yet, add it as a new wallet". Never a second one."""

        def work() -> WalletView:
            user_id = self._user_id(channel, sender_id, create=True)
            assert user_id is not None
            uow = self._uow()
            with uow:
                wallet = services.get_or_create_wallet(uow, user_id=user_id, exchange=exchange)
                uow.commit()
                assert wallet.id is not None
                return WalletView(
                    wallet.id, wallet.exchange, wallet.account_label, None, wallet.last_synced_at
                )

        return await self._in_thread(work)

    # -- the key -------------------------------------------------------------------------------------------

    def _form_token(self, user_id: int, conversation_id: str, wallet_id: int) -> str:
        """The form link's token: the one issued less than `FORM_LINK_REUSE` ago when it is still usable,
        else a new one. Runs in a worker thread."""
        key, now = (user_id, conversation_id, wallet_id), utcnow()
        with self._form_links_lock:
            recent = self._form_links.get(key)
        if recent is not None and now - recent[1] < FORM_LINK_REUSE:
            try:
                inspect_intake_token(self._uow(), recent[0], user_id=user_id, wallet_id=wallet_id, now=now)
                return recent[0]
            except TokenError:
                pass  # used (the key was submitted) or no longer valid: a new link
        token = issue_intake_token(
            self._uow(), user_id=user_id, conversation_id=conversation_id, wallet_id=wallet_id, now=now
        )
        with self._form_links_lock:
            for stale in [k for k, (_, at) in self._form_links.items() if now - at >= FORM_LINK_REUSE]:
                del self._form_links[stale]
            self._form_links[key] = (token, now)
        return token

    async def credential_form(
        self, channel: str, sender_id: str, conversation_id: str, wallet_id: int
    ) -> dict[str, Any]:
        """A one-time intake token for this wallet and conversation, as the payload the widget renders."""

        def work() -> dict[str, Any]:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                self._owned_wallet(uow, user_id, wallet_id)
                wallet = uow.wallets.get(wallet_id)
                assert wallet is not None and user_id is not None
                exchange = wallet.exchange
            token = self._form_token(user_id, conversation_id, wallet_id)
            return credential_form_payload(
                self.settings.web_base_url, token, wallet_id=wallet_id, exchange=exchange
            )

        return await self._in_thread(work)

    async def check_key(
        self, channel: str, sender_id: str, conversation_id: str, wallet_id: int, reference: str
    ) -> KeyCheck:
        """Test the key behind an intake reference live and record the outcome for the key update.

        Raises `PendingCredentialInvalid` for a reference that is unknown, used, expired or another wallet's,
        `UnsupportedExchange` and `DiagnosisRateLimited` as `bot.diagnosis.diagnose` does.
        """

        def load() -> tuple[int, str, Credentials]:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                self._owned_wallet(uow, user_id, wallet_id)
                wallet = uow.wallets.get(wallet_id)
                assert wallet is not None and user_id is not None
                exchange = wallet.exchange
            credentials = services.load_pending_credential(self._uow(), reference, wallet_id=wallet_id)
            return user_id, exchange, credentials

        user_id, exchange, credentials = await self._in_thread(load)
        diagnose = self._diagnose
        if diagnose is None:
            diagnose = live_diagnose
        # Limited per KeyMedic user, not per conversation: a new Slack thread or widget session does not
        # start the count afresh (bot/diagnosis/limits.py).
        diagnosis = await diagnose(exchange, credentials, user_id=f"user:{user_id}")

        def record() -> int:
            return services.record_diagnosis(
                self._uow(),
                wallet_id=wallet_id,
                exchange=exchange,
                all_passed=diagnosis.all_passed,
                outcome=diagnosis.to_dict(),
                reference=reference,
                conversation_id=conversation_id,
            )

        return KeyCheck(diagnosis=diagnosis, record_id=await self._in_thread(record))

    async def update_key(self, channel: str, sender_id: str, wallet_id: int, reference: str) -> KeyUpdated:
        """Swap the tested key into the existing wallet and queue its resync. Only a key whose recorded live
        test passed is accepted (`DiagnosisNotPassed` otherwise) — whatever the conversation's slots say."""

        def work() -> KeyUpdated:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                self._owned_wallet(uow, user_id, wallet_id)
            passed = services.reference_passed_test(self._uow(), reference, wallet_id=wallet_id)
            update = services.replace_credential(self._uow(), wallet_id, reference, passed)
            return KeyUpdated(wallet_id, update.api_key_masked, update.sync_run_id)

        return await self._resync_after(await self._in_thread(work))

    async def update_confirmed_key(
        self,
        channel: str,
        sender_id: str,
        conversation_id: str,
        wallet_id: int,
        reference: str,
        confirmed: Iterable[Item],
    ) -> KeyUpdated:
        """Swap in a key whose recorded live test left only items the user may vouch for, once the user has
        confirmed each in the checklist (`bot.types.confirmation`), and queue its resync. The record, not
        the conversation, decides: a refused key or an unconfirmed item raises `DiagnosisNotPassed`."""
        given = frozenset(confirmed)

        def work() -> KeyUpdated:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                self._owned_wallet(uow, user_id, wallet_id)
            update = services.replace_confirmed_credential(
                self._uow(), wallet_id, reference, confirmed=given, conversation_id=conversation_id
            )
            return KeyUpdated(wallet_id, update.api_key_masked, update.sync_run_id)

        return await self._resync_after(await self._in_thread(work))

    async def _resync_after(self, updated: KeyUpdated) -> KeyUpdated:
        enqueue = self._enqueue
        if enqueue is None:
            enqueue = enqueue_resync
        await self._in_thread(lambda: enqueue(updated.sync_run_id))
        return updated

    # -- after the update ----------------------------------------------------------------------------------

    async def sync_report(self, channel: str, sender_id: str, sync_run_id: int) -> SyncReport:
        """How the resync of a key update is going. Raises `NotFound` for a run that does not exist or is not
        on one of this user's wallets — the same error, so a typed id tells nothing about other users."""

        def work() -> SyncReport:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                run = uow.sync_runs.get(sync_run_id)
                # `/ask_sync_status{"sync_run_id": "…"}` is something any user can type (Rasa parses that
                # form on every channel): the run must be on a wallet of the conversation's owner.
                if run is None or not self._owns(uow, user_id, run.wallet_id):
                    raise NotFound(f"this user has no sync run {sync_run_id}")
                wallet = uow.wallets.get(run.wallet_id)
                return SyncReport(
                    sync_run_id,
                    run.status.value,
                    run.added,
                    run.updated,
                    run.unchanged,
                    run.error,
                    wallet.exchange if wallet is not None else "",
                )

        return await self._in_thread(work)

    async def open_ticket(
        self,
        channel: str,
        sender_id: str,
        conversation_id: str,
        *,
        reason: str,
        wallet_id: int | None = None,
        checklist: dict[str, Any] | None = None,
    ) -> int:
        """The conversation's support ticket, opened with what KeyMedic learned, or the one already open
        (never two tickets for one conversation). Returns its id. Each opening queues one notification to
        support in the same transaction (`bot.handoff.services.ticket_opened`), then nudges its delivery."""

        def work() -> tuple[int, str | None]:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                # The wallet comes from a slot the user can fill (`/inform{"wallet_id": …}`): another user's
                # is left out (its diagnosis and edits never reach this ticket), and the hand-off goes on.
                owned = wallet_id is not None and self._owns(uow, user_id, wallet_id)
                ticket = uow.tickets.by_conversation(conversation_id)
                if ticket is not None and ticket.id is not None:
                    # Locked: a concurrent hand-off of this conversation waits instead of losing its update.
                    ticket = uow.tickets.lock(ticket.id)
                if ticket is None:
                    ticket = Ticket(conversation_id=conversation_id, reason=reason, user_id=user_id)
                    uow.tickets.add(ticket)
                ticket.wallet_id = wallet_id if owned else ticket.wallet_id
                # A new dict all the way down: SQLAlchemy sees a JSON column change only by comparison.
                payload = json.loads(json.dumps(ticket.payload))
                payload["channel"] = channel
                if ticket.wallet_id is not None:
                    latest = uow.diagnoses.latest_for_wallet(ticket.wallet_id)
                    payload["diagnosis"] = latest.outcome if latest is not None else None
                    payload["removal_impact"] = uow.transactions.removal_impact(ticket.wallet_id).to_dict()
                if checklist:
                    payload["checklist"] = dict(checklist)
                payload.setdefault("reasons", [])
                if reason not in payload["reasons"]:
                    payload["reasons"].append(reason)
                ticket.payload = payload
                uow.flush()
                delivery_id = ticket_opened(uow, ticket)
                assert ticket.id is not None
                ticket_id = ticket.id
                uow.commit()
                return ticket_id, delivery_id

        try:
            ticket_id, delivery_id = await self._in_thread(work)
        except IntegrityError:
            # Another hand-off of this conversation (a double click, a retried Slack event) created the ticket
            # first; the unique conversation id refused a second one, and this attempt reuses the first.
            ticket_id, delivery_id = await self._in_thread(work)
        if delivery_id is not None:
            await self._in_thread(self._nudge_delivery)
        return ticket_id

    def _nudge_delivery(self) -> None:
        # Best effort: the notification is already in the outbox, and the periodic sweep delivers it if the
        # job queue cannot be reached now. The hand-off itself must not fail for it.
        try:
            enqueue = self._enqueue_delivery
            if enqueue is None:
                enqueue = enqueue_outbox_delivery
            enqueue()
        except Exception as error:
            logging.getLogger(__name__).warning(
                "could not queue the outbox delivery (%s); the periodic sweep will", type(error).__name__
            )

    async def removal_impact(self, channel: str, sender_id: str, wallet_id: int) -> RemovalImpact:
        """What removing this wallet would delete for good."""

        def work() -> RemovalImpact:
            user_id = self._user_id(channel, sender_id)
            uow = self._uow()
            with uow:
                self._owned_wallet(uow, user_id, wallet_id)
            return services.removal_impact(self._uow(), wallet_id)

        return await self._in_thread(work)
