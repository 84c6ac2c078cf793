"""`RequeueingRedisLockStore`: Rasa 3.6's Redis lock store, without its wait-forever after a replica dies.

Rasa serves a conversation's messages one at a time with tickets in Redis (rasa/core/lock_store.py). A
waiting message polls every second and, each time, drops the expired tickets, its own included. When a
replica dies holding a ticket, that ticket expires `TICKET_LOCK_LIFETIME` seconds after it was issued; a
message queued behind it less than a poll interval later has a ticket expiring in the same second, so one
poll drops both, and Rasa's waiter then waits for a ticket that no longer exists: the conversation is stuck
until the lock key goes away (found by tests/e2e/test_cluster.py's replica kill; docs/deploy.md "Locks").

Here a waiter whose ticket has gone takes a new one at the back of the queue and goes on waiting, so the
conversation continues on the replica that is left. Configured in endpoints.cluster.yml like Rasa's
(`url`, `port`, `db`, `password`, `key_prefix`) with `type:` naming this class.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore

__all__ = ["RequeueingRedisLockStore"]

logger = logging.getLogger(__name__)


class RequeueingRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store whose waiters re-queue when their ticket expired while they waited."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        # Rasa builds custom lock stores as `cls(endpoint_config=…)`; tests may pass Rasa's keyword arguments.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            while True:
                lock = self.get_lock(conversation_id)
                if lock is None or lock._ticket_for_ticket_number(ticket) is None:
                    # Our ticket expired while we waited (or the lock was cleaned up): queue again.
                    logger.warning(
                        "ticket of conversation %s expired while waiting; queued again", conversation_id
                    )
                    ticket = self.issue_ticket(conversation_id, lock_lifetime)
                    continue
                if not lock.is_locked(ticket):
                    break
                await asyncio.sleep(wait_time_in_seconds)
                self.update_lock(conversation_id)
            yield lock
        finally:
            self.cleanup(conversation_id, ticket)
