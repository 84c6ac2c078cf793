"""Who may post a credential form (issue 15 item 4): the real web app with its real `identify`, the widget's
JWT, over HTTP, on SQLite and PostgreSQL.

A token offered in the widget is bound to the widget's verified user: another user's JWT, a forged JWT, or no
JWT at all is refused, and the token stays usable for its owner. A token offered privately in Slack (the
user's browser has no widget JWT) vouches for its user alone, but never for another signed-in user.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from bot.config import load_settings
from bot.intake import WIDGET_CHANNEL, issue_intake_token
from bot.store import orm, services
from bot.store.crypto import KeyRing
from bot.store.db import Database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web.app import build_app
from tests.support.web import serve_web_app

pytestmark = pytest.mark.integration

JWT_SECRET = "w" * 48
WIDGET_CONVERSATION = "w-0123456789abcdef0123456789abcdef"
SLACK_CONVERSATION = "slack-T1-D1-1767225600.000100"
SECRET = "SECRET-9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f"


def jwt_for(sub: str, *, secret: str = JWT_SECRET) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": sub, "aud": "keymedic-widget", "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, 'HS256')}"}


@dataclass
class Site:
    url: str
    uow: SqlAlchemyUnitOfWork
    database: Database
    alice: int
    wallet: int

    def token(self, conversation: str) -> str:
        return issue_intake_token(
            self.uow, user_id=self.alice, conversation_id=conversation, wallet_id=self.wallet
        )

    def body(self, token: str) -> dict[str, object]:
        return {
            "token": token,
            "wallet_id": self.wallet,
            "api_key": "APIKEY-abcdef0123456789",
            "api_secret": SECRET,
        }

    def used_tokens(self) -> int:
        with self.database.engine.connect() as connection:
            table = orm.intake_tokens
            used = connection.scalar(
                select(func.count()).select_from(table).where(table.c.used_at.is_not(None))
            )
        return int(used or 0)


@pytest.fixture
def site(uow: SqlAlchemyUnitOfWork, database: Database, keys: KeyRing, database_url: str) -> Iterator[Site]:
    with uow:
        alice = services.ensure_user(uow, "alice")
        services.ensure_user(uow, "mallory")
        # What the widget channel records when alice's socket connects (channels/socketio.py StoreLinker).
        services.link_identity(uow, alice, channel=WIDGET_CHANNEL, external_id=WIDGET_CONVERSATION)
        assert alice.id is not None
        wallet = services.get_or_create_wallet(uow, user_id=alice.id, exchange="kraken")
        assert wallet.id is not None
        ids = (alice.id, wallet.id)
        uow.commit()
    settings = replace(
        load_settings(),
        database_url=database_url,
        widget_jwt_secret=JWT_SECRET,
        widget_jwt_audience="keymedic-widget",
        widget_demo_signin=False,
    )
    app = build_app(settings, uow_factory=lambda: SqlAlchemyUnitOfWork(database, keys))
    with serve_web_app(app) as url:
        yield Site(url, uow, database, *ids)


def submit(site: Site, token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{site.url}/intake/credentials",
        json=site.body(token),
        headers=headers or {},
        timeout=10,
        trust_env=False,
    )


def test_a_widget_token_posted_by_another_signed_in_user_is_refused_and_stays_usable(site: Site) -> None:
    token = site.token(WIDGET_CONVERSATION)
    refused = submit(site, token, jwt_for("mallory"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "wrong_user"
    assert "another user" in refused.json()["error"]["message"]
    assert site.used_tokens() == 0
    # A subject KeyMedic does not know is another user too.
    assert submit(site, token, jwt_for("eve")).json()["error"]["code"] == "wrong_user"
    # The form page a browser would post shows nothing either.
    page = httpx.post(
        f"{site.url}/intake/form", data={"token": token}, headers=jwt_for("mallory"), trust_env=False
    )
    assert page.status_code == 403 and 'type="password"' not in page.text
    assert submit(site, token, jwt_for("alice")).status_code == 201
    assert site.used_tokens() == 1


def test_a_widget_token_without_a_verified_user_is_refused(site: Site) -> None:
    token = site.token(WIDGET_CONVERSATION)
    anonymous = submit(site, token)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "not_signed_in")
    forged = submit(site, token, jwt_for("alice", secret="f" * 48))
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "not_signed_in")
    assert site.used_tokens() == 0
    assert submit(site, token, jwt_for("alice")).status_code == 201


def test_a_slack_token_vouches_for_its_user_but_not_for_another_signed_in_one(site: Site) -> None:
    token = site.token(SLACK_CONVERSATION)
    assert submit(site, token, jwt_for("mallory")).json()["error"]["code"] == "wrong_user"
    assert site.used_tokens() == 0
    # Opened from the Slack DM in a browser that has no widget JWT.
    assert submit(site, token).status_code == 201
