"""What `keymedic run` (and the e2e fixture) gives the widget: a JWT key per run, the demo sign-in, and Rasa
started with CORS for the web app's page."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.launcher import child_environment, local_services
from bot.web.widget.demo import demo_signin_enabled

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": tmp_path,
        "web_port": 18080,
        "rasa_port": 15005,
        "web_public_url": "",
        "widget_origins": (),
        "widget_jwt_secret": "",
        "agent_token": "agent-token-for-tests",
        **overrides,
    }
    return replace(load_settings(), **values)  # type: ignore[arg-type]


def test_each_run_gets_its_own_widget_key_and_the_demo_sign_in(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = child_environment(settings, {})
    second = child_environment(settings, {})
    assert len(first["KEYMEDIC_WIDGET_JWT_SECRET"].encode()) >= 32
    assert first["KEYMEDIC_WIDGET_JWT_SECRET"] != second["KEYMEDIC_WIDGET_JWT_SECRET"]
    assert first["KEYMEDIC_WIDGET_DEMO_SIGNIN"] == "1"
    # Nothing written to disk: the key lives as long as the run.
    assert not any("widget" in path.name for path in tmp_path.rglob("*"))


def test_a_key_the_operator_set_is_kept(tmp_path: Path) -> None:
    mine = "operator-chosen-widget-key-" + "k" * 32
    assert (
        child_environment(_settings(tmp_path), {"KEYMEDIC_WIDGET_JWT_SECRET": mine})[
            "KEYMEDIC_WIDGET_JWT_SECRET"
        ]
        == mine
    )
    from_settings = child_environment(_settings(tmp_path, widget_jwt_secret=mine), {})
    assert from_settings["KEYMEDIC_WIDGET_JWT_SECRET"] == mine


def test_the_operator_can_turn_the_demo_sign_in_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = child_environment(_settings(tmp_path), {"KEYMEDIC_WIDGET_DEMO_SIGNIN": "0"})
    assert env["KEYMEDIC_WIDGET_DEMO_SIGNIN"] == "0"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert not demo_signin_enabled(load_settings())


def test_the_web_app_child_signs_in_the_demo_user_and_rasa_allows_its_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    env = child_environment(settings, {})
    # What the web app's process reads from that environment.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = load_settings()
    assert demo_signin_enabled(child)
    assert child.widget_socket_base_url == "http://127.0.0.1:15005"

    rasa = next(s for s in local_services(settings, tmp_path / "model.tar.gz") if s.name == "rasa")
    cors = rasa.argv[rasa.argv.index("--cors") + 1 :]
    assert cors == ["http://127.0.0.1:18080", "http://localhost:18080"]
    assert set(cors) <= set(child.widget_allowed_origins)


def test_configured_origins_get_cors_too(tmp_path: Path) -> None:
    settings = _settings(tmp_path, widget_origins=("https://app.example.com",))
    rasa = next(s for s in local_services(settings, tmp_path / "model.tar.gz") if s.name == "rasa")
    assert rasa.argv[rasa.argv.index("--cors") + 1 :] == ["https://app.example.com"]
