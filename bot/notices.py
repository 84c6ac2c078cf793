"""Account notices: telling a KeyMedic user, in their widget conversation, what was done to their account.

Today one kind: a Slack account was linked to theirs (`bot.store.slack.redeem_link_code` writes the outbox row
in the same transaction as the link, reason `ACCOUNT_NOTICE`). If the user did not do it, the notice is how
they learn, and it says how to remove the link. Delivery is the outbox's (`bot.handoff.outbox.deliver_due`:
claimed, retried with back-off, never given up on); `bot.jobs.sweep_account_notices` runs it every minute.

Where: the user's widget conversation (`socketio` / <session id>, linked when the widget connects), as a bot
message appended through Rasa's API and sent to the widget if it is open (`output_channel=latest`). A user
who never opened the widget has none yet: the notice waits, retried, until they do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import select

from bot.handoff.outbox import DeliveryFailed
from bot.handoff.rasa import RasaConversations, RasaError
from bot.store import orm
from bot.store.model import OutboxMessage
from bot.store.slack import ACCOUNT_NOTICE
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

__all__ = ["ACCOUNT_NOTICE", "NOTICE_METADATA_KEY", "WIDGET_CHANNEL", "notice_text", "WidgetNoticeSender"]

# The widget channel's identities (channels/socketio.py `StoreLinker`).
WIDGET_CHANNEL: Final = "socketio"
# Marks the bot event as a notice, so the transcript and the widget can tell it from the assistant's turns.
NOTICE_METADATA_KEY: Final = "keymedic_notice"


def notice_text(payload: dict[str, Any]) -> str:
    """What the user reads; no secret is ever in a notice's payload."""
    if payload.get("kind") == "slack_linked":
        return (
            f"A Slack account ({payload.get('slack_user', 'unknown')}) was linked to your KeyMedic account "
            "and can now act on it from Slack. If that was not you, remove the link from your account page "
            "(Slack links) or ask support."
        )
    return "Something changed on your KeyMedic account. Ask support if you did not expect it."


class WidgetNoticeSender:
    """The outbox's `Send` for account notices: a bot message in the user's widget conversation."""

    def __init__(
        self, uow_factory: Callable[[], SqlAlchemyUnitOfWork], rasa: Callable[[], RasaConversations]
    ) -> None:
        self._uow_factory = uow_factory
        self._rasa = rasa

    def _conversation(self, user_id: int) -> str | None:
        table = orm.channel_identities
        with (uow := self._uow_factory()):
            found = uow.session.execute(
                select(table.c.external_id)
                .where(table.c.user_id == user_id, table.c.channel == WIDGET_CHANNEL)
                .order_by(table.c.created_at.desc(), table.c.id.desc())
            ).first()
        return str(found.external_id) if found is not None else None

    def __call__(self, message: OutboxMessage) -> None:
        if message.reason != ACCOUNT_NOTICE or message.user_id is None:
            raise DeliveryFailed("not an account notice")
        conversation = self._conversation(message.user_id)
        if conversation is None:
            raise DeliveryFailed("the user has no widget conversation yet")
        event = {
            "event": "bot",
            "text": notice_text(message.payload),
            "metadata": {NOTICE_METADATA_KEY: str(message.payload.get("kind", "notice"))},
        }

        async def append() -> None:
            rasa = self._rasa()
            try:
                await rasa.append_events(conversation, [event], deliver=True)
            finally:
                await rasa.aclose()

        try:
            asyncio.run(append())
        except RasaError as error:
            raise DeliveryFailed(str(error)) from None
