"""Production mode (`KEYMEDIC_ENV=production`) refuses each unsafe setting, one line each; local does not."""

from __future__ import annotations

import argparse
import io
import os
import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, Settings, load_settings
from bot.production import rasa_credentials_violations, refuse_to_start, violations
from bot.store.crypto import KeyRingError, key_file_path, load_key_ring, new_key_entry
from bot.web.widget.demo import demo_signin_enabled
from rasa_plugins import run as rasa_run

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def safe_production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """A production configuration with nothing to refuse."""
    for name in list(os.environ):
        if name.startswith("KEYMEDIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_ENV", "production")
    monkeypatch.setenv("KEYMEDIC_ENCRYPTION_KEYS", new_key_entry("k1"))
    monkeypatch.setenv("KEYMEDIC_RASA_TOKEN", TOKEN)
    monkeypatch.setenv("KEYMEDIC_ACTIONS_TOKEN", secrets.token_urlsafe(32))
    monkeypatch.setenv("KEYMEDIC_AGENT_TOKEN", secrets.token_urlsafe(32))
    monkeypatch.setenv("KEYMEDIC_KRAKEN_URL", "https://api.kraken.com")
    settings = load_settings()
    assert settings.production and violations(settings) == []
    return settings


def refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str | None) -> list[str]:
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)
    return violations(load_settings())


def test_local_mode_is_the_default_and_refuses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYMEDIC_ENV", raising=False)
    monkeypatch.setenv("KEYMEDIC_KRAKEN_URL", "http://127.0.0.1:8765/kraken")
    monkeypatch.setenv("KEYMEDIC_WIDGET_DEMO_SIGNIN", "1")
    settings = load_settings()
    assert settings.mode == "local" and not settings.production
    assert violations(settings) == []


def test_an_unknown_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMEDIC_ENV", "prod")
    with pytest.raises(ValueError, match="KEYMEDIC_ENV must be one of local, production"):
        load_settings()


def test_production_refuses_to_generate_encryption_keys(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    [reason] = refused(monkeypatch, "KEYMEDIC_ENCRYPTION_KEYS", None)
    assert reason.startswith("KEYMEDIC_ENCRYPTION_KEYS is not set")
    # And the store itself never makes one there, whoever calls it.
    with pytest.raises(KeyRingError, match="never generates"):
        load_key_ring(load_settings())
    assert not key_file_path(load_settings()).exists()


@pytest.mark.parametrize("name", ["KEYMEDIC_RASA_TOKEN", "KEYMEDIC_ACTIONS_TOKEN"])
def test_production_refuses_a_missing_internal_token(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    [reason] = refused(monkeypatch, name, None)
    assert reason.startswith(f"{name} is not set")


@pytest.mark.parametrize("name", ["KEYMEDIC_RASA_TOKEN", "KEYMEDIC_ACTIONS_TOKEN", "KEYMEDIC_AGENT_TOKEN"])
def test_production_refuses_a_token_shorter_than_32_bytes_without_showing_it(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    [reason] = refused(monkeypatch, name, "short-token-abc123")
    assert reason.startswith(f"{name} is shorter than 32 bytes")
    assert "short-token-abc123" not in reason


def test_production_allows_the_agent_api_off(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert refused(monkeypatch, "KEYMEDIC_AGENT_TOKEN", None) == []


def test_production_refuses_the_demo_sign_in_and_the_web_app_never_serves_it(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYMEDIC_WIDGET_JWT_SECRET", secrets.token_urlsafe(48))
    [reason] = refused(monkeypatch, "KEYMEDIC_WIDGET_DEMO_SIGNIN", "1")
    assert reason.startswith("KEYMEDIC_WIDGET_DEMO_SIGNIN is on")
    # Loopback address, flag on, a good key: still off, because of the mode (not only the address).
    settings = load_settings()
    assert settings.web_base_url.startswith("http://127.0.0.1:")
    assert not demo_signin_enabled(settings)
    assert demo_signin_enabled(replace(settings, mode="local"))


@pytest.mark.parametrize(
    "url",
    [
        "http://api.kraken.com",  # signed requests in clear
        "http://127.0.0.1:8765/kraken",  # the sandbox of a local run
        "https://127.0.0.1:8765/kraken",
        "https://localhost/kraken",
        "https://[::1]:8765/kraken",
        "https://10.0.0.5/kraken",
        "https://169.254.169.254/latest",
        "https://0.0.0.0/kraken",
        "kraken.com",
    ],
)
def test_production_refuses_plain_http_and_sandbox_exchange_urls(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    [reason] = refused(monkeypatch, "KEYMEDIC_KRAKEN_URL", url)
    assert reason.startswith("KEYMEDIC_KRAKEN_URL ")


def test_a_tls_endpoint_on_this_machine_needs_its_ca_named_and_https_even_then(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEYMEDIC_EXCHANGE_CA_BUNDLE", str(tmp_path / "ca.pem"))
    assert refused(monkeypatch, "KEYMEDIC_OKX_URL", "https://127.0.0.1:9443/okx") == []
    [reason] = refused(monkeypatch, "KEYMEDIC_OKX_URL", "http://127.0.0.1:9443/okx")
    assert "not an https URL" in reason


def test_every_violation_is_reported_at_once(
    safe_production: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYMEDIC_ENCRYPTION_KEYS")
    monkeypatch.delenv("KEYMEDIC_RASA_TOKEN")
    monkeypatch.setenv("KEYMEDIC_COINBASE_URL", "http://127.0.0.1:8765/coinbase")
    out = io.StringIO()
    assert refuse_to_start(load_settings(), "keymedic web", out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(line.startswith("keymedic web: refusing to start in production: ") for line in lines)


def test_a_safe_configuration_starts(safe_production: Settings) -> None:
    out = io.StringIO()
    assert not refuse_to_start(safe_production, "keymedic worker", out=out)
    assert not refuse_to_start(replace(safe_production, mode="local"), "sandbox", ["sandbox"], out=out)
    assert out.getvalue() == ""


def test_production_rasa_refuses_the_rest_channel(safe_production: Settings) -> None:
    [reason] = rasa_credentials_violations(safe_production, PROJECT_ROOT / "credentials.yml")
    assert "REST channel" in reason
    assert rasa_credentials_violations(safe_production, PROJECT_ROOT / "credentials.production.yml") == []
    local = replace(safe_production, mode="local")
    assert rasa_credentials_violations(local, PROJECT_ROOT / "credentials.yml") == []


def test_rasa_never_takes_its_token_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYMEDIC_RASA_TOKEN", TOKEN)
    assert rasa_run.main(["--enable-api", "--auth-token", TOKEN]) == 1
    assert "refusing --auth-token on the command line" in capsys.readouterr().err


def test_rasa_does_not_start_without_a_token_in_any_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KEYMEDIC_ENV", raising=False)
    monkeypatch.delenv("KEYMEDIC_RASA_TOKEN", raising=False)
    assert rasa_run.main(["--enable-api", "--logging-config-file", "bot/observability/rasa_logging.yml"]) == 1
    assert "KEYMEDIC_RASA_TOKEN is not set" in capsys.readouterr().err


def test_production_rasa_refuses_unscrubbed_logs_and_the_rest_channel(
    safe_production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rasa_run.main(["--enable-api", "--credentials", str(PROJECT_ROOT / "credentials.yml")]) == 1
    err = capsys.readouterr().err
    assert "no --logging-config-file" in err and "REST channel" in err
    assert TOKEN not in err


def test_the_exchange_sandbox_and_the_local_launchers_never_run_in_production(
    safe_production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import launcher
    from bot.cluster import cli as cluster_cli
    from bot.sandbox import cli as sandbox_cli

    for module, process in (
        (sandbox_cli, "keymedic sandbox"),
        (launcher, "keymedic run"),
        (cluster_cli, "keymedic cluster"),
    ):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        args = parser.parse_args([])
        assert module.run(args) == 1
        assert f"{process}: refusing to start in production: " in capsys.readouterr().err


def test_exchange_clients_trust_only_the_named_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.exchanges._http import _exchange_tls
    from tests.tls import tls_files

    monkeypatch.delenv("KEYMEDIC_EXCHANGE_CA_BUNDLE", raising=False)
    assert _exchange_tls() is True  # httpx's default: certifi's CAs
    ca, _, _ = tls_files(tmp_path)
    monkeypatch.setenv("KEYMEDIC_EXCHANGE_CA_BUNDLE", str(ca))
    context = _exchange_tls()
    assert not isinstance(context, bool)
    [trusted] = context.get_ca_certs()
    assert dict(x[0] for x in trusted["subject"])["commonName"] == "KeyMedic test CA"


@pytest.mark.parametrize("token", ["-starts-with-a-dash-" + "x" * 24, "--looks-like-an-option", "plain" * 8])
def test_rasas_own_parser_takes_any_generated_token(token: str) -> None:
    from rasa.cli.arguments.run import add_server_arguments

    from rasa_plugins.run import rasa_token_argument

    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    assert parser.parse_args([rasa_token_argument(token)]).auth_token == token
