"""Background jobs on Huey (DESIGN §7): resyncs run here, never inside an action's request.

The queue is chosen when first used, from the settings of that moment: `RedisHuey` storage when
`KEYMEDIC_JOBS_URL=redis://…`, else `SqliteHuey` storage on `var/jobs.db` for a local run. Importing this
module connects nowhere and creates no file.

Jobs are idempotent: `resync_wallet(sync_run_id)` runs a sync run that was created (with its idempotency key)
in the same transaction as the change that needs it, and the run's status is a compare-and-set guard, so a
retried, duplicated or concurrent job never applies a sync twice.

Outbox deliveries (DESIGN §6, docs/handoff.md): `deliver_outbox()` is queued right after a ticket opens,
and `sweep_outbox` runs every minute in the consumer; both make one pass of `bot.handoff.outbox.deliver_due`,
whose claims keep two workers (or two passes) from sending one notification at the same time. A pass
retried or run twice is harmless.

Proactive outreach (docs/handoff.md "Proactive outreach"): when `resync_wallet` ends with the exchange
refusing the key, it queues `outreach_after_sync(sync_run_id)`, which offers the fix in the user's
conversation through Rasa's trigger_intent API, at most once per wallet and day (`bot.outreach`).

`keymedic worker` starts a consumer.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huey import Huey, crontab  # type: ignore[import-untyped]
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage  # type: ignore[import-untyped]

from bot.worker_liveness import Heartbeat

if TYPE_CHECKING:
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "huey",
    "resync_wallet",
    "enqueue_resync",
    "run_resync",
    "deliver_outbox",
    "sweep_outbox",
    "enqueue_outbox_delivery",
    "run_outbox_delivery",
    "outreach_after_sync",
    "enqueue_outreach",
    "run_outreach_job",
    "run_recover_syncs",
    "recover_syncs",
    "purge_pending",
    "add_arguments",
    "run",
]

log = logging.getLogger(__name__)


class _LazyHuey(Huey):  # type: ignore[misc]
    """A Huey whose storage is built on first use (Huey's own classes open SQLite at construction)."""

    def __init__(self, name: str) -> None:
        self._storage: Any = None
        super().__init__(name, utc=True)

    def create_storage(self) -> Any:
        if self._immediate and self.immediate_use_memory:
            return MemoryStorage(self.name)
        return None  # built by the `storage` property when first needed

    @property
    def storage(self) -> Any:
        if self._storage is None:
            self._storage = self._build_storage()
        return self._storage

    @storage.setter
    def storage(self, value: Any) -> None:
        self._storage = value

    def _build_storage(self) -> Any:
        from bot.config import load_settings

        settings = load_settings()
        if settings.jobs_url.startswith(("redis://", "rediss://", "unix://")):
            # The queue is named by the deployment's namespace, so two deployments sharing a Redis (or a test
            # next to a dev cluster) never take each other's jobs.
            return RedisStorage(settings.redis_namespace, url=settings.jobs_url)
        if settings.jobs_url:
            raise ValueError("KEYMEDIC_JOBS_URL must be a redis:// URL (or unset for the local SQLite queue)")
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        return SqliteStorage(self.name, filename=str(settings.var_dir / "jobs.db"))


huey = _LazyHuey("keymedic")


def run_resync(sync_run_id: int) -> dict[str, Any]:
    """Run one sync run with the process's settings (database, keys, history adapters)."""
    import asyncio

    from bot.config import load_settings
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork
    from bot.sync.runner import sync_wallet

    settings = load_settings()
    database = create_database(settings.database_url)
    try:
        uow = SqlAlchemyUnitOfWork(database, load_key_ring(settings))
        outcome = asyncio.run(sync_wallet(uow, sync_run_id))
    finally:
        database.dispose()
    return outcome.to_dict()


# Retries cover what happens before the run is claimed (database briefly unreachable, worker restarted);
# once claimed, a failure is recorded on the run and the claim guard makes a retry a no-op.
@huey.task(retries=3, retry_delay=10)  # type: ignore[untyped-decorator]
def resync_wallet(sync_run_id: int) -> dict[str, Any]:
    """Resync the wallet of sync run `sync_run_id` (idempotent); a failure on the key queues the outreach."""
    outcome = run_resync(sync_run_id)
    if outcome.get("ran") and outcome.get("status") == "failed":
        from bot.types.history import key_rejection

        if key_rejection(outcome.get("error")) is not None:
            enqueue_outreach(sync_run_id)
    return outcome


def enqueue_resync(sync_run_id: int) -> None:
    """Queue the resync job of a sync run (made by `services.replace_credential` or `request_sync`)."""
    resync_wallet(sync_run_id)


def run_recover_syncs() -> dict[str, Any]:
    """Queue again the sync runs whose job died with a worker (`SyncRunRepository.abandoned`).

    A queue message is taken off the queue when a worker starts it (Huey has no acknowledgement), so a worker
    killed in the middle of a resync takes the job with it and leaves the run `running`. The run itself is
    in the database: queued again here, its claim (a compare-and-set on a stale heartbeat) lets exactly one
    job run it, and a duplicate of a job still waiting finds the run taken or finished and does nothing.
    """
    from bot.config import load_settings
    from bot.store.model import utcnow
    from bot.store.unit_of_work import UnitOfWorkFactory
    from bot.sync.runner import STALE_AFTER

    factory = UnitOfWorkFactory(load_settings())
    try:
        uow = factory()
        with uow:
            now = utcnow()
            runs = uow.sync_runs.abandoned(queued_before=now - STALE_AFTER, stale_before=now - STALE_AFTER)
    finally:
        factory.database.dispose()
    for sync_run_id in runs:
        enqueue_resync(sync_run_id)
    if runs:
        log.warning("queued %d abandoned sync run(s) again: %s", len(runs), runs)
    return {"requeued": runs}


# Every five minutes: a run is abandoned only after `STALE_AFTER` (ten minutes) without a heartbeat anyway.
@huey.periodic_task(crontab(minute="*/5"))  # type: ignore[untyped-decorator]
def recover_syncs() -> dict[str, Any]:
    """Queue again the sync runs a killed worker left behind."""
    return run_recover_syncs()


def run_outbox_delivery() -> dict[str, Any]:
    """One delivery pass over the due support notifications, with the process's settings."""
    from bot.config import load_settings
    from bot.handoff.outbox import RetryPolicy, deliver_due
    from bot.handoff.services import SUPPORT_REASONS
    from bot.handoff.slack_support import SlackSupportPoster
    from bot.handoff.webhook import WebhookSender
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = load_settings()
    policy = RetryPolicy(
        base_s=settings.outbox_retry_base_s,
        cap_s=settings.outbox_retry_cap_s,
        lease_s=settings.outbox_lease_s,
    )
    if policy.lease_s <= settings.support_webhook_timeout_s:
        raise ValueError("KEYMEDIC_OUTBOX_LEASE must be longer than KEYMEDIC_SUPPORT_WEBHOOK_TIMEOUT")
    database = create_database(settings.database_url)
    keys = load_key_ring(settings)
    to_channel = settings.slack_support_enabled
    if not settings.support_webhook_url and not to_channel:
        # Nothing is claimed: the notifications wait in the outbox until a webhook is configured.
        try:
            uow = SqlAlchemyUnitOfWork(database, keys, write=False)
            with uow:
                waiting = uow.outbox.count_undelivered(SUPPORT_REASONS)
        finally:
            database.dispose()
        if waiting:
            log.warning("KEYMEDIC_SUPPORT_WEBHOOK_URL is not set; %d support notification(s) wait", waiting)
        return {"delivered": [], "failed": [], "configured": False}
    sender: WebhookSender | SlackSupportPoster
    if to_channel:
        # The support channel (issue 16): posted with the bot token, so each notification starts a thread
        # the agents answer in; the webhook, if also set, is not used.
        sender = SlackSupportPoster(
            token=settings.slack_support_bot_token,
            channel=settings.slack_support_channel,
            uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys),
            web_base_url=settings.web_base_url,
            slack_api_url=settings.slack_api_url,
            timeout_s=settings.support_webhook_timeout_s,
        )
    else:
        sender = WebhookSender(
            settings.support_webhook_url,
            "slack" if settings.support_webhook_kind == "slack" else "json",
            web_base_url=settings.web_base_url,
            secret=settings.support_webhook_secret,
            timeout_s=settings.support_webhook_timeout_s,
        )
    try:
        report = deliver_due(
            lambda: SqlAlchemyUnitOfWork(database, keys), sender, reasons=SUPPORT_REASONS, policy=policy
        )
        follow_up = (
            _follow_up_delay(SqlAlchemyUnitOfWork(database, keys, write=False)) if report.failed else None
        )
    finally:
        sender.close()
        database.dispose()
    result = {**report.to_dict(), "configured": True}
    if follow_up is not None:
        # A retry falls due on its own schedule (30 s, 1 min, …), not at the next minute's sweep. Only a pass
        # that failed schedules one, and a pass that finds nothing due schedules nothing, so these chains end.
        deliver_outbox.schedule(delay=follow_up)
        result["follow_up_in"] = follow_up
    return result


def _follow_up_delay(uow: SqlAlchemyUnitOfWork) -> float | None:
    """Seconds until the earliest undelivered notification falls due, between 1 s and the sweep's minute."""
    from bot.handoff.services import SUPPORT_REASONS
    from bot.store.model import utcnow

    with uow:
        due = uow.outbox.next_due(SUPPORT_REASONS)
    if due is None:
        return None
    return min(60.0, max(1.0, (due - utcnow()).total_seconds()))


# No Huey retries: a failed attempt is recorded on its outbox row and retried on the row's own schedule.
@huey.task()  # type: ignore[untyped-decorator]
def deliver_outbox() -> dict[str, Any]:
    """Deliver the due support notifications now (queued when a ticket opens)."""
    return run_outbox_delivery()


# The outbox's own clock: retries fall due while nobody enqueues anything, and a restarted worker finds
# what a stopped one left (rows `sending` past their lease).
@huey.periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def sweep_outbox() -> dict[str, Any]:
    """Deliver whatever notifications are due (every minute)."""
    return run_outbox_delivery()


def enqueue_outbox_delivery() -> None:
    """Queue a delivery pass (`SupportDesk.open_ticket` calls it after the ticket's transaction)."""
    deliver_outbox()


def run_outreach_job(sync_run_id: int) -> dict[str, Any]:
    """The outreach after failed sync run `sync_run_id`, with the process's settings (`bot.outreach`)."""
    import asyncio

    from bot.config import load_settings
    from bot.handoff.rasa import RasaConversations
    from bot.outreach.service import run_outreach
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = load_settings()
    database = create_database(settings.database_url)
    keys = load_key_ring(settings)

    async def work() -> dict[str, Any]:
        rasa = RasaConversations(settings.rasa_base_url, token=settings.rasa_token)
        try:
            result = await run_outreach(lambda: SqlAlchemyUnitOfWork(database, keys), rasa, sync_run_id)
        finally:
            await rasa.aclose()
        return result.to_dict()

    try:
        return asyncio.run(work())
    finally:
        database.dispose()


# Retries cover Rasa being briefly unreachable (the row is pending again and the next attempt claims it); the
# day's row and its claim keep a retried or duplicated job from speaking twice.
@huey.task(retries=3, retry_delay=30)  # type: ignore[untyped-decorator]
def outreach_after_sync(sync_run_id: int) -> dict[str, Any]:
    """Offer the fix in the user's conversation after sync run `sync_run_id` failed on the key."""
    return run_outreach_job(sync_run_id)


def enqueue_outreach(sync_run_id: int) -> None:
    """Queue the outreach job of a failed sync run (best effort: a lost one costs one message, not data)."""
    try:
        outreach_after_sync(sync_run_id)
    except Exception as error:
        log.warning("could not queue the outreach for sync run %s (%s)", sync_run_id, type(error).__name__)


# An encrypted key nobody will use is a liability, not a record: gone within ten minutes of being rejected
# or expiring. Idempotent, so two workers running it at once only find less to delete.
@huey.periodic_task(crontab(minute="*/10"))  # type: ignore[untyped-decorator]
def purge_pending() -> dict[str, Any]:
    """Delete expired and rejected pending credentials (every ten minutes)."""
    from bot.store.purge import run_purge_pending

    return run_purge_pending()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2, help="concurrent jobs (default 2)")
    parser.add_argument(
        "--worker-type", choices=("thread", "process"), default="thread", help="how jobs run (default thread)"
    )
    parser.add_argument(
        "--heartbeat",
        type=Path,
        default=None,
        help="the liveness file to rewrite every second (default: KEYMEDIC_VAR_DIR/run/worker.heartbeat; "
        "bot/worker_liveness.py)",
    )
    parser.add_argument(
        "--no-periodic",
        action="store_true",
        help="do not schedule the periodic jobs (run several workers with only one scheduling them)",
    )


def run(args: argparse.Namespace) -> int:
    """`keymedic worker`: consume jobs until stopped (Ctrl-C or SIGTERM)."""
    from bot.config import load_settings
    from bot.observability.logs import install_logging
    from bot.production import refuse_to_start

    install_logging("worker")  # JSON lines, secrets scrubbed (docs/operating.md)
    if refuse_to_start(load_settings(), "keymedic worker"):
        return 1
    settings = load_settings()
    heartbeat = Heartbeat(args.heartbeat or settings.var_dir / "run" / "worker.heartbeat")
    # Each job is timed from its start to its end, so a stuck one stops the heartbeat (bot.worker_liveness).
    huey.pre_execute(name="heartbeat-start")(lambda task: heartbeat.job_started(task.id))
    huey.post_execute(name="heartbeat-end")(lambda task, value, error: heartbeat.job_ended(task.id))
    consumer = huey.create_consumer(
        workers=args.workers, worker_type=args.worker_type, periodic=not args.no_periodic
    )
    heartbeat.start()
    print(
        f"worker: ready ({args.workers} {args.worker_type} worker(s); heartbeat {heartbeat.path})", flush=True
    )
    try:
        consumer.run()
    finally:
        heartbeat.stop()
    return 0


def run_account_notices() -> dict[str, Any]:
    """One delivery pass over the due account notices (a new Slack link, `bot.notices`)."""
    from bot.config import load_settings
    from bot.handoff.outbox import RetryPolicy, deliver_due
    from bot.handoff.rasa import RasaConversations
    from bot.notices import ACCOUNT_NOTICE, WidgetNoticeSender
    from bot.store.crypto import load_key_ring
    from bot.store.db import create_database
    from bot.store.unit_of_work import SqlAlchemyUnitOfWork

    settings = load_settings()
    database = create_database(settings.database_url)
    keys = load_key_ring(settings)
    try:
        sender = WidgetNoticeSender(
            lambda: SqlAlchemyUnitOfWork(database, keys),
            lambda: RasaConversations(settings.rasa_base_url, token=settings.rasa_token),
        )
        report = deliver_due(
            lambda: SqlAlchemyUnitOfWork(database, keys),
            sender,
            reasons=(ACCOUNT_NOTICE,),
            policy=RetryPolicy(cap_s=settings.outbox_retry_cap_s),
        )
    finally:
        database.dispose()
    return report.to_dict()


# Account notices wait in the outbox (written with the link itself, in the Rasa process); a minute is soon
# enough for "a Slack account was linked to yours".
@huey.periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def sweep_account_notices() -> dict[str, Any]:
    """Deliver the due account notices (every minute)."""
    return run_account_notices()
