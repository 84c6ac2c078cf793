"""A new Slack link is told to the KeyMedic account (issue 15): the outbox row written with the link is
delivered as a bot message into the user's widget conversation, through Rasa's API (a MockTransport standing
in for Rasa), on SQLite and PostgreSQL; a user with no widget conversation yet keeps it waiting."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select

from bot.handoff.outbox import RetryPolicy, deliver_due
from bot.handoff.rasa import RasaConversations
from bot.notices import NOTICE_METADATA_KEY, WIDGET_CHANNEL, WidgetNoticeSender
from bot.store import orm, services, slack
from bot.store.crypto import KeyRing
from bot.store.db import Database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc)
SESSION = "w-00112233445566778899aabbccddeeff"


def _link(uow: SqlAlchemyUnitOfWork, handle: str, slack_user: str, *, widget: bool) -> None:
    with uow:
        user = services.ensure_user(uow, handle)
        if widget:
            services.link_identity(uow, user, channel=WIDGET_CHANNEL, external_id=SESSION)
        token = slack.issue_link_token(uow, "T1", slack_user, now=NOW)
        code = slack.code_candidate(slack.issue_link_code(uow, token, user, now=NOW)) or ""
        slack.redeem_link_code(uow, "T1", slack_user, code, now=NOW)
        uow.commit()


def _deliver(database: Database, keys: KeyRing, seen: list[httpx.Request]) -> dict[str, list[str]]:
    def rasa(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    sender = WidgetNoticeSender(
        lambda: SqlAlchemyUnitOfWork(database, keys),
        lambda: RasaConversations("http://rasa.test", token="t", transport=httpx.MockTransport(rasa)),
    )
    report = deliver_due(
        lambda: SqlAlchemyUnitOfWork(database, keys),
        sender,
        reasons=(slack.ACCOUNT_NOTICE,),
        policy=RetryPolicy(),
    )
    return report.to_dict()


def test_a_new_slack_link_is_told_in_the_users_widget_conversation(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing
) -> None:
    _link(uow, "alice", "U1", widget=True)
    seen: list[httpx.Request] = []
    report = _deliver(database, keys, seen)
    assert len(report["delivered"]) == 1 and report["failed"] == []
    [request] = seen
    assert request.url.path == f"/conversations/{SESSION}/tracker/events"
    assert request.url.params["output_channel"] == "latest"
    [event] = json.loads(request.content)
    assert event["event"] == "bot" and "T1:U1" in event["text"] and "remove the link" in event["text"]
    assert event["metadata"] == {NOTICE_METADATA_KEY: "slack_linked"}
    # Told once.
    assert _deliver(database, keys, seen)["delivered"] == [] and len(seen) == 1


def test_a_notice_waits_for_a_user_who_never_opened_the_widget(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing
) -> None:
    _link(uow, "bob", "U2", widget=False)
    seen: list[httpx.Request] = []
    report = _deliver(database, keys, seen)
    assert report["delivered"] == [] and len(report["failed"]) == 1 and seen == []
    with uow:
        [row] = uow.session.execute(select(orm.outbox.c.status, orm.outbox.c.last_error)).all()
    assert row.status == "pending" and "no widget conversation" in row.last_error
