"""Reading a posted body: JSON or an HTML form, within the size limit; the per-exchange field table."""

from __future__ import annotations

import json

import pytest

from bot import intake
from bot.exchanges import LIVE_CLIENTS, client_class
from bot.web.intake import status_of

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def test_a_json_object_is_read_as_its_fields() -> None:
    body = json.dumps({"token": "t", "wallet_id": 3, "api_secret": "é-ü"}).encode()
    assert intake.parse_body("application/json; charset=utf-8", body) == {
        "token": "t",
        "wallet_id": 3,
        "api_secret": "é-ü",
    }


def test_a_form_is_read_as_its_fields_percent_decoded_as_utf8() -> None:
    body = b"token=t&wallet_id=3&api_secret=a%2Bb%3D%C3%A9&passphrase="
    assert intake.parse_body(FORM, body) == {
        "token": "t",
        "wallet_id": "3",
        "api_secret": "a+b=é",
        "passphrase": "",
    }


def test_an_empty_form_has_no_fields() -> None:
    assert intake.parse_body(FORM, b"") == {}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (JSON, b"{"),
        (JSON, b""),
        (JSON, b"[1, 2]"),
        (JSON, b'"a string"'),
        (JSON, b"null"),
        (JSON, b'{"a": NaN}'),
        (JSON, b'{"api_key": "a", "api_key": "b"}'),
        (JSON, b"\xff\xfe{}"),
        (JSON, b"[" * 5000 + b"]" * 5000),
        (FORM, b"api_key=a&api_key=b"),
        (FORM, b"api_key=%ff"),
        (FORM, b"just-text"),
        (FORM, "api_key=é".encode()),
        (FORM, b"&".join(b"f%d=x" % n for n in range(40))),
    ],
)
def test_malformed_bodies_are_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(intake.MalformedBody) as refused:
        intake.parse_body(content_type, body)
    assert status_of(refused.value) == 400 and refused.value.code == "malformed_body"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data; boundary=x", "", "application/xml"]
)
def test_other_media_types_are_refused(content_type: str) -> None:
    with pytest.raises(intake.UnsupportedMediaType) as refused:
        intake.parse_body(content_type, b"{}")
    assert status_of(refused.value) == 415


def test_a_body_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(intake.PayloadTooLarge) as refused:
        intake.parse_body(JSON, b" " * (intake.MAX_BODY_BYTES + 1))
    assert status_of(refused.value) == 413
    assert intake.parse_body(JSON, b"{}".ljust(intake.MAX_BODY_BYTES)) == {}


def test_a_duplicate_field_is_named_only_when_it_is_one_of_ours() -> None:
    with pytest.raises(intake.MalformedBody) as ours:
        intake.parse_body(FORM, b"api_key=a&api_key=b")
    assert "api_key" in str(ours.value) and ours.value.field == "api_key"
    with pytest.raises(intake.MalformedBody) as theirs:
        intake.parse_body(FORM, b"pasted-secret=a&pasted-secret=b")
    assert "pasted-secret" not in str(theirs.value) and theirs.value.field is None


@pytest.mark.parametrize("exchange", sorted(LIVE_CLIENTS))
def test_the_passphrase_field_matches_the_live_clients(exchange: str) -> None:
    names = [spec.name for spec in intake.fields_for(exchange)]
    assert ("passphrase" in names) == client_class(exchange).needs_passphrase
    assert names[:2] == ["api_key", "api_secret"]


def test_only_kucoin_asks_for_a_key_version() -> None:
    assert [
        e
        for e in ("kucoin", "okx", "kraken", "coinbase")
        if "key_version" in {s.name for s in intake.fields_for(e)}
    ] == ["kucoin"]
