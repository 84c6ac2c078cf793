"""Slack's state in the store (`bot.store.slack`) and the web app's link endpoints (`bot.web.slack_link`), on
SQLite and PostgreSQL: a delivery acts once even when replicas race, a thread belongs to its opener, and a
Slack user is linked only when both ends prove themselves — the signed-in user who opened the one-time link
gets a code, and only the Slack user who asked for the link can use it, by sending it back."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import jwt
import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.store import orm, services, slack
from bot.store.crypto import KeyRing
from bot.store.db import Database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web.app import build_app
from tests.support.web import serve_web_app

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


def _code(uow: SqlAlchemyUnitOfWork, team: str, user: str, who: object, *, now: datetime = NOW) -> str:
    token = slack.issue_link_token(uow, team, user, now=now)
    return slack.issue_link_code(uow, token, who, now=now)  # type: ignore[arg-type]


def test_a_link_is_made_only_when_the_slack_user_sends_the_code_shown_to_the_signed_in_user(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    with uow:
        alice = services.ensure_user(uow, "alice")
        token = slack.issue_link_token(uow, "T1", "U1", now=NOW)
        assert token.startswith("sl_")
        assert slack.pending_link(uow, token, now=NOW).slack_identity == "T1:U1"
        code = slack.issue_link_code(uow, token, alice, now=NOW)
        assert len(code) == 9 and code[4] == "-"
        # Opening the link and getting a code links nothing: the Slack end has not spoken yet.
        assert slack.linked_user(uow, "T1", "U1") is None
        with pytest.raises(slack.LinkRefused, match="token_used"):
            slack.issue_link_code(uow, token, alice, now=NOW)
        # The right code from another Slack user is no code of theirs.
        with pytest.raises(slack.LinkRefused, match="no_code"):
            slack.redeem_link_code(uow, "T1", "U2", slack.code_candidate(code) or "", now=NOW)
        linked = slack.redeem_link_code(uow, "T1", "U1", slack.code_candidate(code.lower()) or "", now=NOW)
        assert linked.id == alice.id
        found = slack.linked_user(uow, "T1", "U1")
        assert found is not None and found.id == alice.id
        # Single use.
        with pytest.raises(slack.LinkRefused, match="no_code"):
            slack.redeem_link_code(uow, "T1", "U1", slack.code_candidate(code) or "", now=NOW)
        uow.commit()


def test_someone_who_opens_a_forwarded_link_gets_a_code_the_sender_cannot_guess(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    # Mallory's Slack user (T1:UM) sends Alice its link; Alice opens it signed in and gets a code. Mallory
    # tries codes from Slack: five wrong ones burn it, and even the right one is refused after that.
    with uow:
        alice = services.ensure_user(uow, "alice")
        code = _code(uow, "T1", "UM", alice)
        right = slack.code_candidate(code)
        assert right is not None
        wrong = "ABCDEFGH" if right != "ABCDEFGH" else "HGFEDCBA"
        for _ in range(slack.LINK_CODE_ATTEMPTS):
            with pytest.raises(slack.LinkRefused, match="wrong_code"):
                slack.redeem_link_code(uow, "T1", "UM", wrong, now=NOW)
        with pytest.raises(slack.LinkRefused, match="no_code"):
            slack.redeem_link_code(uow, "T1", "UM", right, now=NOW)
        assert slack.linked_user(uow, "T1", "UM") is None
        uow.commit()


def test_a_code_expires_and_a_new_one_replaces_the_old(uow: SqlAlchemyUnitOfWork) -> None:
    with uow:
        alice = services.ensure_user(uow, "alice")
        first = slack.code_candidate(_code(uow, "T1", "U5", alice)) or ""
        later = NOW + slack.LINK_CODE_TTL + timedelta(seconds=1)
        with pytest.raises(slack.LinkRefused, match="no_code"):
            slack.redeem_link_code(uow, "T1", "U5", first, now=later)
        second = slack.code_candidate(_code(uow, "T1", "U5", alice, now=later)) or ""
        if first != second:
            with pytest.raises(slack.LinkRefused):
                slack.redeem_link_code(uow, "T1", "U5", first, now=later)
        assert slack.redeem_link_code(uow, "T1", "U5", second, now=later).id == alice.id
        uow.commit()


def test_a_linked_slack_user_never_moves_and_every_new_link_tells_the_account(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    with uow:
        alice, mallory = services.ensure_user(uow, "alice"), services.ensure_user(uow, "mallory")
        code = slack.code_candidate(_code(uow, "T1", "U6", alice)) or ""
        slack.redeem_link_code(uow, "T1", "U6", code, now=NOW)
        token = slack.issue_link_token(uow, "T1", "U6", now=NOW)
        with pytest.raises(slack.LinkRefused, match="already_linked"):
            slack.issue_link_code(uow, token, mallory, now=NOW)
        outbox = orm.outbox
        notices = uow.session.execute(
            select(outbox.c.payload).where(
                outbox.c.user_id == alice.id, outbox.c.reason == slack.ACCOUNT_NOTICE
            )
        ).all()
        assert [(n.payload["kind"], n.payload["slack_user"]) for n in notices] == [("slack_linked", "T1:U6")]
        # The account removes the link: the Slack user is a stranger again.
        assert slack.unlink(uow, alice) == ["T1:U6"]
        assert slack.linked_user(uow, "T1", "U6") is None
        assert slack.unlink(uow, alice) == []
        uow.commit()


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


def test_the_link_endpoint_gives_a_signed_in_user_a_code_and_links_nothing_by_itself(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, database_url: str, tmp_path: object
) -> None:
    # The attack of issue 15: Mallory (Slack U3) sends Alice the link; Alice, signed in, opens it. Before,
    # that confirmed the link and Mallory's Slack acted on Alice's account. Now Alice only gets a code.
    with uow:
        services.ensure_user(uow, "alice")
        token = slack.issue_link_token(uow, "T1", "U3", now=datetime.now(timezone.utc))
        uow.commit()
    settings = _app_settings(database_url, tmp_path, demo=False)
    app = build_app(settings, uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys))  # type: ignore[arg-type]
    with serve_web_app(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
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
        issued = client.post(
            "/slack/link", json={"token": token}, headers={"Authorization": f"Bearer {_token('alice')}"}
        )
        assert issued.status_code == 201
        answer = issued.json()
        assert (
            answer["status"] == "code_issued"
            and answer["slack_user"] == "T1:U3"
            and answer["user"] == "alice"
        )
        assert slack.code_candidate(answer["code"]) is not None
        assert answer["expires_in_s"] == slack.LINK_CODE_TTL.total_seconds()
        again = client.post(
            "/slack/link", json={"token": token}, headers={"Authorization": f"Bearer {_token('mallory')}"}
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "token_used")
        assert client.get("/slack/link", params={"token": token}).status_code == 409
    with uow:
        assert slack.linked_user(uow, "T1", "U3") is None
        # Only the Slack user who asked, sending the code, completes it.
        code = slack.code_candidate(answer["code"]) or ""
        user = slack.redeem_link_code(uow, "T1", "U3", code, now=datetime.now(timezone.utc))
        assert user.handle == "alice"
        uow.commit()


def test_a_signed_in_user_lists_and_removes_their_slack_links(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, database_url: str, tmp_path: object
) -> None:
    with uow:
        alice, bob = services.ensure_user(uow, "alice"), services.ensure_user(uow, "bob")
        for who, slack_user in ((alice, "U7"), (alice, "U8"), (bob, "U9")):
            code = slack.code_candidate(_code(uow, "T1", slack_user, who)) or ""
            slack.redeem_link_code(uow, "T1", slack_user, code, now=NOW)
        uow.commit()
    settings = _app_settings(database_url, tmp_path, demo=False)
    app = build_app(settings, uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys))  # type: ignore[arg-type]
    as_alice = {"Authorization": f"Bearer {_token('alice')}"}
    with serve_web_app(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        assert client.get("/slack/links").status_code == 401
        listed = client.get("/slack/links", headers=as_alice).json()["links"]
        assert [link["slack_user"] for link in listed] == ["T1:U7", "T1:U8"]
        # Bob's link is not Alice's to remove, whatever she names.
        assert client.post("/slack/unlink", json={"slack_user": "T1:U9"}, headers=as_alice).json() == {
            "status": "unlinked",
            "removed": [],
        }
        # Another site's form post (no preflight) removes nothing.
        assert client.post("/slack/unlink", data={"slack_user": "T1:U7"}, headers=as_alice).status_code == 400
        removed = client.post("/slack/unlink", json={"slack_user": "T1:U7"}, headers=as_alice).json()
        assert removed == {"status": "unlinked", "removed": ["T1:U7"]}
        assert [
            link["slack_user"] for link in client.get("/slack/links", headers=as_alice).json()["links"]
        ] == ["T1:U8"]
    with uow:
        assert slack.linked_user(uow, "T1", "U7") is None
        assert slack.linked_user(uow, "T1", "U9") is not None


def test_a_local_runs_demo_sign_in_shows_the_code_on_a_page(
    uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, database_url: str, tmp_path: object
) -> None:
    with uow:
        services.ensure_user(uow, "demo")
        token = slack.issue_link_token(uow, "T1", "U4", now=datetime.now(timezone.utc))
        uow.commit()
    settings = _app_settings(database_url, tmp_path, demo=True)
    app = build_app(settings, uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys))  # type: ignore[arg-type]
    with serve_web_app(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        page = client.get("/slack/link", params={"token": token})
        assert "Show my code to link it to demo" in page.text
        done = client.post("/slack/link", data={"token": token}, headers={"Accept": "text/html"})
        assert done.status_code == 201 and "Your Slack link code" in done.text
        shown = re.search(r"<kbd>([A-Z0-9]{4}-[A-Z0-9]{4})</kbd>", done.text)
        assert shown is not None
    with uow:
        assert slack.linked_user(uow, "T1", "U4") is None
        code = slack.code_candidate(shown[1]) or ""
        user = slack.redeem_link_code(uow, "T1", "U4", code, now=datetime.now(timezone.utc))
        assert user.handle == "demo"


def test_support_lists_and_removes_a_users_slack_links_from_the_command_line(
    uow: SqlAlchemyUnitOfWork,
    database_url: str,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main

    with uow:
        alice = services.ensure_user(uow, "alice")
        for slack_user in ("U10", "U11"):
            code = slack.code_candidate(_code(uow, "T1", slack_user, alice)) or ""
            slack.redeem_link_code(uow, "T1", slack_user, code, now=NOW)
        uow.commit()
    monkeypatch.setenv("KEYMEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    assert main(["slack", "links", "--user", "alice"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["T1:U10", "T1:U11"]
    assert main(["slack", "unlink", "--user", "alice", "--slack-user", "T1:U10"]) == 0
    assert "removed 1 link(s): T1:U10" in capsys.readouterr().out
    assert main(["slack", "unlink", "--user", "nobody"]) == 1
    with uow:
        assert slack.linked_user(uow, "T1", "U10") is None
        assert slack.linked_user(uow, "T1", "U11") is not None
