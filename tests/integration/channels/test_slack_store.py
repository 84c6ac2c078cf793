"""Slack's state in the store (`bot.store.slack`) and the web app's link endpoint (`bot.web.slack_link`), on
SQLite and PostgreSQL: a delivery acts once even when replicas race, a thread belongs to its opener, and a
one-time link ties a Slack user to whoever confirms it while signed in — once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import jwt
import pytest

from bot.config import load_settings
from bot.store import services, slack
from bot.store.crypto import KeyRing
from bot.store.db import Database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web.app import build_app
from tests.integration.web.conftest import serve

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
JWT_SECRET = "k" * 48


def test_a_delivery_is_first_once_even_when_replicas_race(database: Database, keys: KeyRing) -> None:
    SqlAlchemyUnitOfWork(database, keys)  # maps the model once, before the threads

    def claim(_: int) -> bool:
        uow = SqlAlchemyUnitOfWork(database, keys)
        with uow:
            fresh = slack.first_delivery(uow, "event:Ev0RACE", now=NOW)
            uow.commit()
            return fresh

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(claim, range(8)))
    assert results.count(True) == 1


def test_old_delivery_keys_are_forgotten(uow: SqlAlchemyUnitOfWork) -> None:
    with uow:
        assert slack.first_delivery(uow, "event:old", now=NOW - timedelta(days=2))
        assert slack.first_delivery(uow, "event:new", now=NOW)
        assert slack.forget_deliveries(uow, before=NOW - slack.DELIVERY_MEMORY) == 1
        assert slack.first_delivery(uow, "event:old", now=NOW)  # forgotten, so new again
        assert not slack.first_delivery(uow, "event:new", now=NOW)
        uow.commit()


def test_a_thread_belongs_to_the_user_who_opened_it(uow: SqlAlchemyUnitOfWork) -> None:
    with uow:
        alice, bob = services.ensure_user(uow, "alice"), services.ensure_user(uow, "bob")
        assert slack.bind_conversation(uow, "slack-T1-C1-1.1", alice) is alice
        assert slack.bind_conversation(uow, "slack-T1-C1-1.1", bob).id == alice.id
        # What SupportDesk asks: the conversation's user on the "slack" channel.
        found = services.user_for_channel(uow, "slack", "slack-T1-C1-1.1")
        assert found is not None and found.id == alice.id
        uow.commit()


def test_a_link_token_links_once_and_never_moves_a_linked_slack_user(uow: SqlAlchemyUnitOfWork) -> None:
    with uow:
        alice, mallory = services.ensure_user(uow, "alice"), services.ensure_user(uow, "mallory")
        token = slack.issue_link_token(uow, "T1", "U1", now=NOW)
        assert token.startswith("sl_")
        assert slack.pending_link(uow, token, now=NOW).slack_identity == "T1:U1"
        assert slack.linked_user(uow, "T1", "U1") is None
        assert slack.redeem_link_token(uow, token, alice, now=NOW) == "T1:U1"
        linked = slack.linked_user(uow, "T1", "U1")
        assert linked is not None and linked.id == alice.id
        with pytest.raises(slack.LinkRefused, match="token_used"):
            slack.redeem_link_token(uow, token, mallory, now=NOW)
        # A second link for the same Slack user, confirmed by someone else, does not take the account over.
        again = slack.issue_link_token(uow, "T1", "U1", now=NOW)
        with pytest.raises(slack.LinkRefused, match="already_linked"):
            slack.redeem_link_token(uow, again, mallory, now=NOW)
        uow.rollback()


@pytest.mark.parametrize(
    ("token", "at", "code"),
    [
        ("sl_not-one-we-made", NOW, "token_unknown"),
        ("it_an-intake-token", NOW, "token_unknown"),
        (None, NOW + slack.LINK_TOKEN_TTL + timedelta(seconds=1), "token_expired"),
    ],
)
def test_unknown_and_expired_link_tokens_are_refused(
    uow: SqlAlchemyUnitOfWork, token: str | None, at: datetime, code: str
) -> None:
    with uow:
        issued = slack.issue_link_token(uow, "T1", "U2", now=NOW)
        with pytest.raises(slack.LinkRefused, match=code):
            slack.pending_link(uow, token or issued, now=at)


def _app_settings(database_url: str, tmp_path: object, *, demo: bool) -> object:
    return replace(
        load_settings(),
        database_url=database_url,
        widget_jwt_secret=JWT_SECRET,
        widget_jwt_audience="keymedic-widget",
        widget_demo_signin=demo,
        web_public_url="http://127.0.0.1:9",
        agent_token="",
    )


def _token(sub: str, *, secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": "keymedic-widget", "iat": now, "exp": now + 300}, secret, "HS256")


def test_the_link_endpoint_needs_a_signed_in_user_and_links_once(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, database_url: str, tmp_path: object
) -> None:
    with uow:
        services.ensure_user(uow, "alice")
        token = slack.issue_link_token(uow, "T1", "U3", now=datetime.now(timezone.utc))
        uow.commit()
    settings = _app_settings(database_url, tmp_path, demo=False)
    app = build_app(settings, uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys))  # type: ignore[arg-type]
    with serve(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        page = client.get("/slack/link", params={"token": token})
        assert page.status_code == 200 and "U3" in page.text and "<form" not in page.text  # nobody signed in
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert client.post("/slack/link", json={"token": token}).json()["error"]["code"] == "not_signed_in"
        forged = client.post(
            "/slack/link",
            json={"token": token},
            headers={"Authorization": f"Bearer {_token('alice', secret='x' * 48)}"},
        )
        assert forged.status_code == 401
        linked = client.post(
            "/slack/link", json={"token": token}, headers={"Authorization": f"Bearer {_token('alice')}"}
        )
        assert linked.status_code == 201 and linked.json() == {
            "status": "linked",
            "slack_user": "T1:U3",
            "user": "alice",
        }
        again = client.post(
            "/slack/link", json={"token": token}, headers={"Authorization": f"Bearer {_token('mallory')}"}
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "token_used")
        assert client.get("/slack/link", params={"token": token}).status_code == 409
    with uow:
        user = slack.linked_user(uow, "T1", "U3")
        assert user is not None and user.handle == "alice"


def test_a_local_runs_demo_sign_in_confirms_with_a_button(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, database_url: str, tmp_path: object
) -> None:
    with uow:
        services.ensure_user(uow, "demo")
        token = slack.issue_link_token(uow, "T1", "U4", now=datetime.now(timezone.utc))
        uow.commit()
    settings = _app_settings(database_url, tmp_path, demo=True)
    app = build_app(settings, uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys))  # type: ignore[arg-type]
    with serve(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        page = client.get("/slack/link", params={"token": token})
        assert "Link it to demo" in page.text
        done = client.post("/slack/link", data={"token": token}, headers={"Accept": "text/html"})
        assert done.status_code == 201 and "Slack account linked" in done.text
    with uow:
        user = slack.linked_user(uow, "T1", "U4")
        assert user is not None and user.handle == "demo"
