"""A pasted secret never shows: not in a repr, an exception, a log line (DEBUG included) or the CLI's output.
And `keymedic diagnose` reads JSON on stdin, prints the diagnosis as JSON and exits 0/1/2."""

from __future__ import annotations

import argparse
import io
import json
import logging
import pickle
import subprocess
import sys

import httpx
import pytest

from bot.diagnosis import cli, diagnose
from bot.secret import Secret
from bot.types.credentials import Credentials
from tests.unit.diagnosis.fakes import CREDENTIALS, fake, ok

# A Binance-shaped secret (64 letters and digits) easy to grep for.
CANARY = ("CANARYsecret" * 6)[:60] + "wxyz"


def test_secret_repr_str_and_format_are_masked() -> None:
    secret = Secret(CANARY)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>5}"):
        assert CANARY not in shown
        assert shown == "Secret('****wxyz')"
    assert Secret("short").__repr__() == "Secret('****')"
    assert secret.reveal() == CANARY
    assert secret == Secret(CANARY) and secret != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_credentials_repr_masks_everything() -> None:
    creds = Credentials.from_mapping(
        {"api_key": "K" * 40, "api_secret": CANARY, "passphrase": "Passphrase-1"}
    )
    assert CANARY not in repr(creds) and "Passphrase-1" not in repr(creds) and "K" * 40 not in repr(creds)


def test_credentials_from_mapping_names_the_field_not_the_value() -> None:
    with pytest.raises(ValueError, match="api_secret is missing"):
        Credentials.from_mapping({"api_key": "x"})
    with pytest.raises(ValueError) as caught:
        Credentials.from_mapping({"api_key": CANARY, "api_secret": 123})
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        ok({"code": -1022, "msg": "Signature for this request is not valid."}, 400),
        httpx.Response(503, text="down"),
        httpx.Response(200, text="not json"),
        ok({"ipRestrict": False, "enableReading": True, "enableWithdrawals": False}),
    ],
    ids=["auth-error", "server-error", "malformed", "valid"],
)
async def test_pasted_secret_never_reaches_logs_exceptions_or_json(
    answer: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exchange_fake = fake("binance", {"/sapi/v1/account/apiRestrictions": answer})
    creds = Credentials.from_mapping({**CREDENTIALS["binance"], "api_secret": CANARY})
    diagnosis = await diagnose("binance", creds, client=exchange_fake.client(), deadline_s=0.3)
    assert CANARY not in caplog.text
    assert CANARY not in json.dumps(diagnosis.to_dict())
    assert CANARY not in repr(diagnosis)
    assert caplog.records, "the diagnosis logs what it did"


async def test_format_failure_message_does_not_echo_the_secret() -> None:
    creds = Credentials.from_mapping({**CREDENTIALS["binance"], "api_secret": CANARY + " "})
    diagnosis = await diagnose("binance", creds, client=fake("binance").client())
    assert diagnosis.failing() and CANARY not in json.dumps(diagnosis.to_dict())


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *argv: str
) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def binance_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.diagnosis.service.shared_client", lambda: fake("binance").client())


def test_cli_prints_json_and_exits_0_when_everything_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("bot.diagnosis.service.shared_client", lambda: fake("kraken").client())
    code, out, _ = run_cli(monkeypatch, capsys, json.dumps(CREDENTIALS["kraken"]), "--exchange", "Kraken")
    assert code == 0
    assert json.loads(out)["all_passed"] is True


def test_cli_exits_1_when_an_item_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refused = fake("binance", {"/sapi/v1/account/apiRestrictions": ok({"code": -1022, "msg": "bad"}, 400)})
    monkeypatch.setattr("bot.diagnosis.service.shared_client", refused.client)
    stdin = json.dumps({**CREDENTIALS["binance"], "api_secret": CANARY})
    code, out, err = run_cli(monkeypatch, capsys, stdin, "--exchange", "binance")
    assert code == 1
    assert json.loads(out)["items"][2]["status"] == "fail"
    assert CANARY not in out + err + caplog.text


def test_cli_exits_2_when_the_exchange_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    down = fake("okx", {"/api/v5/account/config": httpx.Response(503)})
    monkeypatch.setattr("bot.diagnosis.service.shared_client", down.client)
    code, out, _ = run_cli(
        monkeypatch, capsys, json.dumps(CREDENTIALS["okx"]), "--exchange", "okx", "--deadline", "0.3"
    )
    assert code == 2
    assert json.loads(out)["unavailable"]["kind"] == "server_error"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ('{"api_key": "abc", "api_secret": "' + CANARY, "not valid JSON"),
        ('["' + CANARY + '"]', "JSON object"),
        ('{"api_secret": "' + CANARY + '"}', "api_key is missing"),
    ],
    ids=["truncated-json", "not-an-object", "missing-key"],
)
def test_cli_bad_input_exits_2_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, message: str
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, stdin, "--exchange", "kraken")
    assert code == 2
    assert message in err
    assert CANARY not in out + err


def test_cli_unsupported_exchange_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every exchange id has a live client now; one without stands for a future exchange.
    import bot.exchanges

    monkeypatch.delitem(bot.exchanges.LIVE_CLIENTS, "bitfinex")
    code, _, err = run_cli(monkeypatch, capsys, json.dumps(CREDENTIALS["kraken"]), "--exchange", "bitfinex")
    assert code == 2
    assert "checklist" in err


def test_cli_module_import_is_cheap() -> None:
    probe = (
        "import sys, bot.diagnosis.cli; "
        "print(sorted(m for m in ('httpx', 'jwt', 'cryptography') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_cli_is_registered_as_keymedic_diagnose() -> None:
    from bot.cli import SUBCOMMANDS

    assert SUBCOMMANDS["diagnose"] == ("bot.diagnosis.cli", "test an exchange API key (JSON on stdin)")
