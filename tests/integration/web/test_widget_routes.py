"""The widget's routes in the real web app over real HTTP: the demo page, its assets, and the demo sign-in,
which only a local run's configuration turns on."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from bot.config import Settings, load_settings
from bot.store.unit_of_work import AbstractUnitOfWork
from bot.web.app import build_app
from bot.web.widget import routes
from bot.web.widget.demo import DEMO_TOKEN_TTL_S, demo_signin_enabled
from channels.identity import WidgetTokenVerifier, session_id_for
from tests.support.web import serve_web_app

pytestmark = pytest.mark.integration

SECRET = "widget-test-secret-" + "x" * 32
LOCAL = dict(widget_jwt_secret=SECRET, widget_demo_signin=True, web_port=8080, rasa_port=5005)


def _no_database() -> AbstractUnitOfWork:
    raise AssertionError("the widget's routes never touch the database")


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"web_public_url": "", "widget_socket_url": "", **overrides}
    return replace(load_settings(), **values)  # type: ignore[arg-type]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        yield client


def _serve(settings: Settings, widget_dir: Path | None = None) -> AbstractContextManager[str]:
    app = build_app(settings, uow_factory=_no_database)
    if widget_dir is not None:
        app[routes._DIR] = widget_dir
    return serve_web_app(app)


def test_a_local_run_mints_a_short_lived_token_the_channel_accepts_for_the_demo_user(
    http: httpx.Client,
) -> None:
    settings = _settings(**LOCAL)
    with _serve(settings) as base:
        answer = http.post(f"{base}/widget/demo-token")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"] == "demo" and body["expires_in_s"] == DEMO_TOKEN_TTL_S
    identity = WidgetTokenVerifier(SECRET, settings.widget_jwt_audience).verify(body["token"])
    assert identity.user == "demo" and identity.session_id == session_id_for("demo")
    assert 0 < identity.expires_at - time.time() <= DEMO_TOKEN_TTL_S
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"widget_jwt_secret": SECRET, "widget_demo_signin": False}, id="flag-off"),
        pytest.param(
            {**LOCAL, "web_public_url": "https://keymedic.example.com"}, id="production-address-with-flag"
        ),
        pytest.param({**LOCAL, "widget_jwt_secret": "short"}, id="no-usable-key"),
    ],
)
def test_the_demo_sign_in_is_off_outside_a_local_run(
    http: httpx.Client, overrides: dict[str, object]
) -> None:
    settings = _settings(**overrides)
    assert not demo_signin_enabled(settings)
    with _serve(settings) as base:
        answer = http.post(f"{base}/widget/demo-token")
        page = http.get(f"{base}/widget")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "demo_signin_disabled"
    assert "token" not in answer.json()
    assert page.status_code == 200
    assert "data-token-url" not in page.text and "demo sign-in is off" in page.text


def test_the_flag_comes_from_the_environment_and_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYMEDIC_WIDGET_DEMO_SIGNIN", raising=False)
    assert load_settings().widget_demo_signin is False
    monkeypatch.setenv("KEYMEDIC_WIDGET_DEMO_SIGNIN", "1")
    assert load_settings().widget_demo_signin is True
    monkeypatch.setenv("KEYMEDIC_WIDGET_DEMO_SIGNIN", "maybe")
    with pytest.raises(ValueError, match="KEYMEDIC_WIDGET_DEMO_SIGNIN"):
        load_settings()


def test_a_token_is_minted_only_on_post(http: httpx.Client) -> None:
    with _serve(_settings(**LOCAL)) as base:
        answer = http.get(f"{base}/widget/demo-token")
    # A GET (a prefetch, an <img src>) never gets a token; it is not an asset either.
    assert answer.status_code == 404
    assert "token" not in answer.json()


def test_the_demo_page_mounts_the_widget_with_a_strict_policy(http: httpx.Client) -> None:
    settings = _settings(**LOCAL)
    with _serve(settings) as base:
        page = http.get(f"{base}/widget")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-socket-url="http://127.0.0.1:5005"' in page.text
    assert 'data-token-url="/widget/demo-token"' in page.text
    scripts = re.findall(r'<script src="([^"]+)"></script>', page.text)
    assert scripts == ["/widget/vendor/socket.io.min.js", "/widget/keymedic-widget.js"]
    assert "<script>" not in page.text  # nothing inline: the policy forbids it
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'self' http://127.0.0.1:8080 http://127.0.0.1:5005 ws://127.0.0.1:5005;" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_a_configured_socket_address_is_what_the_page_connects_to(http: httpx.Client) -> None:
    settings = _settings(**LOCAL, widget_socket_url="https://chat.example.com/")
    with _serve(settings) as base:
        page = http.get(f"{base}/widget")
    assert 'data-socket-url="https://chat.example.com"' in page.text
    assert "https://chat.example.com wss://chat.example.com" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "media_type", "marker"),
    [
        ("/widget/keymedic-widget.js", "text/javascript", "KeyMedicWidget"),
        ("/widget/keymedic-widget.css", "text/css", ".km-widget"),
        ("/widget/vendor/socket.io.min.js", "text/javascript", "Socket.IO"),
    ],
)
def test_the_assets_are_served_for_embedding_in_a_host_app(
    http: httpx.Client, path: str, media_type: str, marker: str
) -> None:
    if path.startswith("/widget/vendor") and not (routes.WIDGET_DIR / "node_modules").is_dir():
        pytest.fail("widget/node_modules is missing: run `make setup` (npm ci)")
    with _serve(_settings(**LOCAL)) as base:
        answer = http.get(f"{base}{path}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)
    assert marker in answer.text
    # A host app's page on another origin loads these with <script>/<link>.
    assert answer.headers["cross-origin-resource-policy"] == "cross-origin"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_without_npm_packages_the_client_library_says_how_to_get_it(
    http: httpx.Client, tmp_path: Path
) -> None:
    shutil.copytree(routes.WIDGET_DIR / "src", tmp_path / "src")
    with _serve(_settings(**LOCAL), widget_dir=tmp_path) as base:
        missing = http.get(f"{base}/widget/vendor/socket.io.min.js")
        present = http.get(f"{base}/widget/keymedic-widget.js")
    assert missing.status_code == 503
    assert missing.json()["error"]["code"] == "widget_not_built"
    assert "make setup" in missing.json()["error"]["message"]
    assert present.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/widget/package.json",
        "/widget/src/keymedic-widget.js",
        "/widget/..%2Fpyproject.toml",
        "/widget/vendor/..%2F..%2Fpackage.json",
        "/widget/node_modules/socket.io-client/package.json",
    ],
)
def test_only_the_listed_assets_are_served(http: httpx.Client, path: str) -> None:
    with _serve(_settings(**LOCAL)) as base:
        answer = http.get(f"{base}{path}")
    assert answer.status_code == 404
