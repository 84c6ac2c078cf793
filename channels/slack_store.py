"""What the Slack channel asks the database, from Rasa's event loop (docs/slack.md).

`SlackDirectory` wraps `bot.store.slack` for the channel: has a delivery been acted on already, who is this
Slack user, whose conversation is this thread. SQLAlchemy is synchronous here, so every call runs in a
worker thread, as the widget channel's `StoreLinker` does. The database is opened on first use, never when
Rasa builds the channel.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from bot.config import Settings
from bot.store.model import utcnow

__all__ = ["SlackDirectory", "Resolution"]

# How often one process prunes delivery keys older than `DELIVERY_MEMORY`.
_PRUNE_EVERY_S: Final = 3600.0


@dataclass(frozen=True)
class Resolution:
    """Who a Slack user is in a thread.

    kind: `linked` (the thread is theirs: go on), `unlinked` (tell them how to link: `link_url`; `detail`
    `no_code` when they sent a code and none was waiting), `code_accepted` (the code they sent linked them
    just now; `detail` is the KeyMedic handle), `code_refused` (`detail`: `wrong_code`, `already_linked`),
    `not_owner` (the thread is another user's conversation), or `ignore` (a channel thread that is no
    KeyMedic conversation).
    """

    kind: str
    link_url: str | None = None
    detail: str | None = None


class SlackDirectory:
    """The Slack channel's view of the store."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._database: Any = None
        self._keys: Any = None
        self._pruned_at = 0.0
        self._opening = threading.Lock()

    def _uow(self) -> Any:
        from bot.store.crypto import load_key_ring
        from bot.store.db import create_database
        from bot.store.unit_of_work import SqlAlchemyUnitOfWork

        # Two deliveries arriving together would otherwise both open the database, and both map the model
        # (`orm.start_mappers` is not thread-safe): the first one does it, the other waits.
        with self._opening:
            if self._database is None:
                self._database = create_database(self._settings.database_url)
                self._keys = load_key_ring(self._settings)
            return SqlAlchemyUnitOfWork(self._database, self._keys)

    def _first(self, keys: Sequence[str]) -> bool:
        from bot.store import slack

        now = self._clock()
        uow = self._uow()
        with uow:
            # Every key is recorded, and the delivery is new only if none was seen: an event retried under
            # its event id, or the same message arriving as both `app_mention` and `message`.
            fresh = [slack.first_delivery(uow, key, now=now) for key in keys]
            if time.monotonic() - self._pruned_at > _PRUNE_EVERY_S:
                slack.forget_deliveries(uow, before=now - slack.DELIVERY_MEMORY)
                self._pruned_at = time.monotonic()
            uow.commit()
        return all(fresh)

    async def first(self, keys: Sequence[str]) -> bool:
        """Record these delivery keys; True when none of them was seen before (act on it), else False."""
        return await asyncio.to_thread(self._first, keys)

    def _resolve(
        self, team: str, user: str, conversation: str, existing_thread_only: bool, code: str | None
    ) -> Resolution:
        from bot.store import slack

        uow = self._uow()
        with uow:
            if (
                existing_thread_only
                and uow.users.by_channel(slack.CONVERSATION_CHANNEL, conversation) is None
            ):
                return Resolution("ignore")
            person = slack.linked_user(uow, team, user)
            detail = None
            if person is None and code is not None:
                try:
                    linked = slack.redeem_link_code(uow, team, user, code, now=self._clock())
                except slack.LinkRefused as refused:
                    uow.commit()  # a wrong code counts against the codes waiting for this Slack user
                    if refused.code != "no_code":
                        return Resolution("code_refused", detail=refused.code)
                    detail = refused.code
                else:
                    uow.commit()
                    return Resolution("code_accepted", detail=linked.handle)
            if person is None:
                token = slack.issue_link_token(uow, team, user, now=self._clock())
                uow.commit()
                url = self._settings.slack_link_template.replace("{token}", quote(token, safe=""))
                return Resolution("unlinked", link_url=url, detail=detail)
            owner = slack.bind_conversation(uow, conversation, person)
            uow.commit()
            return Resolution("linked" if owner.id == person.id else "not_owner")

    async def resolve(
        self,
        team: str,
        user: str,
        conversation: str,
        *,
        existing_thread_only: bool = False,
        code: str | None = None,
    ) -> Resolution:
        """Who this Slack user is here; a new thread becomes the conversation of the user who opened it
        unless `existing_thread_only` (a channel thread KeyMedic is not part of is then `ignore`). An unlinked
        user's `code` (a link code they sent in their DM) is tried first."""
        return await asyncio.to_thread(self._resolve, team, user, conversation, existing_thread_only, code)

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
