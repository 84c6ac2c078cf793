"""Credential submissions: validation per exchange, storage through `store_pending_credential`, and no secret
in any error message or log line."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot import intake
from bot.store import services
from bot.store.model import CredentialStatus
from bot.web.intake import status_of
from tests.unit.web.intake_fakes import FakeIntakeUnitOfWork

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
USER = 7
# Markers that must never show up in an error, a log line or a stored row in clear.
SECRET = "SECRET-6f1d3c0e9b8a7d6c5b4a3f2e1d0c"
PASSPHRASE = "PASSPHRASE-a1b2c3d4"
API_KEY = "APIKEY-0123456789abcdef-wxyz"


def setup(exchange: str = "kraken") -> tuple[FakeIntakeUnitOfWork, int, str]:
    uow = FakeIntakeUnitOfWork()
    wallet_id = uow.add_user_wallet(user_id=USER, exchange=exchange)
    token = intake.issue_intake_token(
        uow, user_id=USER, conversation_id="conv-1", wallet_id=wallet_id, now=NOW
    )
    return uow, wallet_id, token


def submit(uow: FakeIntakeUnitOfWork, token: str, fields: dict[str, Any], **kwargs: Any) -> intake.Receipt:
    arguments: dict[str, Any] = {"user_id": USER, "now": NOW, **kwargs}
    return intake.submit_credentials(uow, token, fields=fields, **arguments)


def pending(uow: FakeIntakeUnitOfWork, wallet_id: int) -> list[Any]:
    return uow.credentials.for_wallet(wallet_id, CredentialStatus.PENDING)


def test_a_submission_is_stored_encrypted_and_answered_with_a_reference() -> None:
    uow, wallet_id, token = setup()

    receipt = submit(
        uow, token, {"token": token, "wallet_id": str(wallet_id), "api_key": API_KEY, "api_secret": SECRET}
    )

    assert receipt.reference.startswith("pc_")
    assert receipt.api_key_masked == "****wxyz" and receipt.wallet_id == wallet_id
    assert receipt.expires_at == NOW + services.PENDING_TTL
    (stored,) = pending(uow, wallet_id)
    assert stored.conversation_id == "conv-1"
    assert SECRET.encode() not in (stored.ciphertext or b"")
    loaded = services.load_pending_credential(uow, receipt.reference, wallet_id=wallet_id, now=NOW)
    assert (loaded.api_key, loaded.api_secret.reveal(), loaded.passphrase) == (API_KEY, SECRET, None)
    assert receipt.to_dict()["reference"] == receipt.reference and SECRET not in json.dumps(receipt.to_dict())


def test_a_kucoin_submission_keeps_passphrase_and_key_version() -> None:
    uow, wallet_id, token = setup("kucoin")
    fields = {
        "wallet_id": wallet_id,
        "api_key": API_KEY,
        "api_secret": SECRET,
        "passphrase": PASSPHRASE,
        "key_version": 3,
    }

    receipt = submit(uow, token, fields)

    loaded = services.load_pending_credential(uow, receipt.reference, wallet_id=wallet_id, now=NOW)
    assert loaded.passphrase is not None and loaded.passphrase.reveal() == PASSPHRASE
    assert loaded.key_version == "3"


def test_a_second_submission_with_the_same_token_is_refused() -> None:
    uow, wallet_id, token = setup()
    fields = {"wallet_id": wallet_id, "api_key": API_KEY, "api_secret": SECRET}
    submit(uow, token, fields)
    with pytest.raises(intake.TokenUsed):
        submit(uow, token, fields)
    assert len(pending(uow, wallet_id)) == 1


KEY_SECRET = {"api_key": API_KEY, "api_secret": SECRET}
WITH_PASSPHRASE = {**KEY_SECRET, "passphrase": PASSPHRASE}
INVALID_FIELDS = [
    ("kraken", {"api_secret": SECRET}, intake.MissingField, "api_key"),
    ("kraken", {"api_key": API_KEY}, intake.MissingField, "api_secret"),
    ("kraken", {**KEY_SECRET, "api_secret": "   "}, intake.MissingField, "api_secret"),
    ("okx", KEY_SECRET, intake.MissingField, "passphrase"),
    ("kucoin", {**KEY_SECRET, "passphrase": ""}, intake.MissingField, "passphrase"),
    ("kraken", WITH_PASSPHRASE, intake.UnexpectedField, "passphrase"),
    ("okx", {**WITH_PASSPHRASE, "key_version": "3"}, intake.UnexpectedField, "key_version"),
    ("kraken", {**KEY_SECRET, SECRET: "x"}, intake.UnexpectedField, None),
    ("kraken", {**KEY_SECRET, "api_secret": SECRET + "x" * 4096}, intake.InvalidField, "api_secret"),
    ("kraken", {**KEY_SECRET, "api_key": API_KEY * 30}, intake.InvalidField, "api_key"),
    ("okx", {**WITH_PASSPHRASE, "passphrase": PASSPHRASE * 20}, intake.InvalidField, "passphrase"),
    ("kraken", {**KEY_SECRET, "api_secret": [SECRET]}, intake.InvalidField, "api_secret"),
    ("kraken", {**KEY_SECRET, "api_secret": {"value": SECRET}}, intake.InvalidField, "api_secret"),
    ("kraken", {**KEY_SECRET, "api_key": 12345}, intake.InvalidField, "api_key"),
    ("kucoin", {**WITH_PASSPHRASE, "key_version": "4"}, intake.InvalidField, "key_version"),
]


@pytest.mark.parametrize(("exchange", "fields", "error", "field"), INVALID_FIELDS)
def test_invalid_fields_are_refused_by_name_and_nothing_is_stored(
    exchange: str, fields: dict[str, Any], error: type[intake.IntakeError], field: str | None
) -> None:
    uow, wallet_id, token = setup(exchange)

    with pytest.raises(error) as refused:
        submit(uow, token, {"wallet_id": wallet_id, **fields})

    assert refused.value.field == field
    assert status_of(refused.value) in (400, 422)
    assert SECRET not in str(refused.value) and PASSPHRASE not in str(refused.value)
    assert pending(uow, wallet_id) == []
    # The token was not used up: the corrected form goes through.
    valid = {"wallet_id": wallet_id, "api_key": API_KEY, "api_secret": SECRET}
    if exchange in ("okx", "kucoin"):
        valid["passphrase"] = PASSPHRASE
    submit(uow, token, valid)


BAD_WALLET_IDS = [
    (None, intake.MissingField),
    ("", intake.MissingField),
    ("abc", intake.InvalidField),
    ("-1", intake.InvalidField),
    (0, intake.InvalidField),
    (True, intake.InvalidField),
    ("1" * 19, intake.InvalidField),
    ("٣", intake.InvalidField),  # a digit, but not an ASCII one
]


@pytest.mark.parametrize(("wallet_field", "error"), BAD_WALLET_IDS)
def test_the_wallet_id_must_be_a_positive_whole_number(
    wallet_field: object, error: type[intake.IntakeError]
) -> None:
    uow, wallet_id, token = setup()
    fields = {"api_key": API_KEY, "api_secret": SECRET}
    if wallet_field is not None:
        fields["wallet_id"] = wallet_field  # type: ignore[assignment]
    with pytest.raises(error) as refused:
        submit(uow, token, fields)
    assert refused.value.field == "wallet_id"


def test_token_errors_come_before_field_errors() -> None:
    uow, wallet_id, token = setup()
    with pytest.raises(intake.TokenExpired):
        submit(uow, token, {"wallet_id": wallet_id}, now=NOW + timedelta(minutes=11))


def test_wrong_user_and_wrong_wallet_store_nothing() -> None:
    uow, wallet_id, token = setup()
    other_wallet = uow.add_user_wallet(user_id=99, exchange="kraken")
    fields = {"wallet_id": wallet_id, "api_key": API_KEY, "api_secret": SECRET}
    with pytest.raises(intake.WrongUser):
        submit(uow, token, fields, user_id=99)
    with pytest.raises(intake.WrongWallet):
        submit(uow, token, {**fields, "wallet_id": other_wallet})
    assert pending(uow, wallet_id) == [] and pending(uow, other_wallet) == []


def test_a_failure_while_storing_gives_the_token_back() -> None:
    uow, wallet_id, token = setup()
    fields = {"wallet_id": wallet_id, "api_key": API_KEY, "api_secret": SECRET}
    uow.fail_store = True
    with pytest.raises(RuntimeError):
        submit(uow, token, fields)
    uow.fail_store = False
    assert pending(uow, wallet_id) == []
    submit(uow, token, fields)
    assert len(pending(uow, wallet_id)) == 1


def _every_refusal(uow: FakeIntakeUnitOfWork, wallet_id: int, token: str) -> list[intake.IntakeError]:
    """Each way a submission carrying the secret markers can be refused."""
    base = {"wallet_id": wallet_id, "api_key": API_KEY, "api_secret": SECRET}
    attempts: list[tuple[str | None, dict[str, Any], dict[str, Any]]] = [
        (token, {**base, "passphrase": PASSPHRASE}, {}),
        (token, {**base, "api_secret": SECRET * 200}, {}),
        (token, {**base, SECRET: PASSPHRASE}, {}),
        (token, {**base, "api_secret": [SECRET, PASSPHRASE]}, {}),
        (token, {**base, "api_key": ""}, {}),
        (token, base, {"user_id": 99}),
        (token, {**base, "wallet_id": SECRET}, {}),
        (token, base, {"now": NOW + timedelta(hours=1)}),
        (SECRET, base, {}),
        ("it_" + SECRET[:43].ljust(43, "x"), base, {}),
    ]
    errors = []
    for attempt_token, fields, kwargs in attempts:
        with pytest.raises(intake.IntakeError) as refused:
            submit(uow, attempt_token, fields, **kwargs)  # type: ignore[arg-type]
        errors.append(refused.value)
    body_errors = [
        ("application/json", json.dumps({"api_secret": SECRET})[:-3].encode()),
        ("application/json", b'{"api_secret": "' + SECRET.encode() + b'", "api_secret": "x"}'),
        ("application/json", json.dumps([SECRET]).encode()),
        ("application/x-www-form-urlencoded", f"api_secret={SECRET}&api_secret={PASSPHRASE}".encode()),
        ("application/x-www-form-urlencoded", f"api_secret={SECRET}%ff".encode()),
        ("text/plain", SECRET.encode()),
        ("application/json", json.dumps({"api_secret": SECRET * 1000}).encode()),
    ]
    for content_type, body in body_errors:
        with pytest.raises(intake.IntakeError) as refused:
            intake.parse_body(content_type, body)
        errors.append(refused.value)
    return errors


def test_no_refusal_and_no_log_line_contains_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    uow, wallet_id, token = setup()

    errors = _every_refusal(uow, wallet_id, token)
    receipt = submit(uow, token, {"wallet_id": wallet_id, "api_key": API_KEY, "api_secret": SECRET})

    assert len({type(error) for error in errors}) >= 8
    for error in errors:
        shown = f"{error} {error!r} {json.dumps(error.to_dict())}"
        for marker in (SECRET, SECRET[:12], PASSPHRASE, token):
            assert marker not in shown, (type(error).__name__, marker)
    assert caplog.records, "the intake logs what it does"
    for marker in (SECRET, SECRET[:12], PASSPHRASE, token, API_KEY):
        assert marker not in caplog.text
    assert receipt.reference not in caplog.text


def test_the_api_key_is_never_in_an_error_either() -> None:
    uow, wallet_id, token = setup()
    with pytest.raises(intake.InvalidField) as refused:
        submit(uow, token, {"wallet_id": wallet_id, "api_key": API_KEY * 30, "api_secret": SECRET})
    assert API_KEY not in str(refused.value)
