"""Format checks run before any request: a failed check sends nothing, says what to fix, and leaves every
other item unknown."""

from __future__ import annotations

import base64

import pytest

from bot.diagnosis import diagnose
from bot.types.diagnosis import Item, Status
from tests.unit.diagnosis.fakes import CREDENTIALS, FakeExchange, credentials, fake

PEM = CREDENTIALS["coinbase"]["api_secret"]

# (exchange, what the user pasted instead, a phrase the fix must contain)
CASES: list[tuple[str, dict[str, str], str]] = [
    ("kraken", {"api_secret": CREDENTIALS["kraken"]["api_secret"] + " "}, "at the start or end"),
    ("kraken", {"api_key": " " + CREDENTIALS["kraken"]["api_key"]}, "at the start or end"),
    (
        "binance",
        {"api_key": CREDENTIALS["binance"]["api_key"][:30] + "\n" + CREDENTIALS["binance"]["api_key"][30:]},
        "line break",
    ),
    ("binance", {"api_secret": "s" * 30 + " " + "s" * 33}, "space in the middle"),
    ("binance", {"api_key": CREDENTIALS["binance"]["api_key"][:-1]}, "64 letters and digits"),
    ("binance", {"api_secret": PEM}, "System generated"),
    ("gemini", {"api_key": '"' + CREDENTIALS["gemini"]["api_key"] + '"'}, "quotes"),
    (
        "bitstamp",
        {
            "api_key": CREDENTIALS["bitstamp"]["api_key"][:16]
            + "\u200b"
            + CREDENTIALS["bitstamp"]["api_key"][16:]
        },
        "invisible",
    ),
    ("bitstamp", {"api_secret": CREDENTIALS["bitstamp"]["api_secret"][:-3]}, "32 letters and digits"),
    ("kraken", {"api_secret": "this-is-not*base64"}, "base64"),
    ("kraken", {"api_secret": base64.b64encode(b"k" * 63).decode()}, "truncated"),
    (
        "kraken",
        {"api_key": CREDENTIALS["kraken"]["api_secret"], "api_secret": CREDENTIALS["kraken"]["api_secret"]},
        "swapped",
    ),
    ("kucoin", {"passphrase": ""}, "passphrase"),
    ("okx", {"passphrase": ""}, "passphrase"),
    ("okx", {"api_secret": "22582BD0CFF14C41EDBF1AB98506286"}, "32 letters"),
    ("kucoin", {"api_key": "5c2db93503aa674c74a3173"}, "24 letters"),
    ("kucoin", {"key_version": "1"}, "version 1"),
    (
        "coinbase",
        {"api_key": "g3BLnUYMOQsIo9V5", "api_secret": "M4009eFnOoPwhNoMwJlsAHgIgleGVFPl"},
        "February 2025",
    ),
    ("coinbase", {"api_secret": PEM[: len(PEM) // 2] + "\n-----END EC PRIVATE KEY-----\n"}, "truncated"),
    ("coinbase", {"api_key": PEM, "api_secret": CREDENTIALS["coinbase"]["api_key"]}, "swapped"),
    ("coinbase", {"api_key": "organizations/abc"}, "organizations/<id>/apiKeys/<id>"),
    ("coinbase", {"api_secret": base64.b64encode(b"e" * 64).decode()}, "Ed25519"),
    ("gemini", {"api_key": "5kjcLRsjVGNtVQ2uaGIE"}, "account-"),
]


@pytest.mark.parametrize(("exchange", "changes", "phrase"), CASES)
async def test_format_problem_fails_format_and_sends_no_request(
    exchange: str, changes: dict[str, str], phrase: str
) -> None:
    exchange_fake = FakeExchange({})
    diagnosis = await diagnose(exchange, credentials(exchange, **changes), client=exchange_fake.client())

    assert exchange_fake.requests == []
    outcome = diagnosis.outcome(Item.FORMAT)
    assert outcome.status is Status.FAIL
    assert phrase in (outcome.fix or "")
    assert all(o.status is Status.UNKNOWN for o in diagnosis.items[1:])
    assert diagnosis.unavailable is None


async def test_coinbase_pem_pasted_with_literal_backslash_n_is_repaired_and_reported() -> None:
    escaped = PEM.strip().replace("\n", "\\n")
    exchange_fake = fake("coinbase")
    diagnosis = await diagnose(
        "coinbase", credentials("coinbase", api_secret=escaped), client=exchange_fake.client()
    )
    outcome = diagnosis.outcome(Item.FORMAT)
    assert outcome.status is Status.PASS
    assert "\\n" in (outcome.detail or "")
    assert diagnosis.outcome(Item.SECRET_OK).status is Status.PASS
    assert exchange_fake.requests


async def test_a_passphrase_with_a_space_inside_is_allowed() -> None:
    exchange_fake = fake("okx")
    diagnosis = await diagnose(
        "okx", credentials("okx", passphrase="my pass phrase 1"), client=exchange_fake.client()
    )
    assert diagnosis.outcome(Item.FORMAT).status is Status.PASS
