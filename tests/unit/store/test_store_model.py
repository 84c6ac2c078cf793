"""Small pure pieces of the store and sync: amounts, error texts, removal impact."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.secret import Secret
from bot.store.model import RemovalImpact
from bot.store.orm import canonical_decimal, canonical_json
from bot.sync.runner import describe_failure
from bot.types.credentials import Credentials


@pytest.mark.parametrize(
    "value, text",
    [
        ("1.50", "1.5"),
        ("100", "100"),
        ("1E+2", "100"),
        ("-0.000", "0"),
        ("0.000000000000000001", "0.000000000000000001"),
    ],
)
def test_amounts_have_one_spelling(value: str, text: str) -> None:
    assert canonical_decimal(Decimal(value)) == text


def test_non_finite_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        canonical_decimal(Decimal("NaN"))


def test_raw_json_is_stable() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'
    )


def test_a_failure_text_never_carries_the_wallets_secrets() -> None:
    creds = Credentials(
        api_key="AKEY-1234567890-abcd",
        api_secret=Secret("S3cr3t-value-xyz-987"),
        passphrase=Secret("pass-phrase-77"),
    )
    exc = RuntimeError(
        "auth failed for AKEY-1234567890-abcd with S3cr3t-value-xyz-987/pass-phrase-77 " + "x" * 900
    )
    text = describe_failure(exc, creds)
    assert "AKEY-1234567890" not in text and "S3cr3t" not in text and "pass-phrase-77" not in text
    assert text.startswith("RuntimeError: auth failed for ****abcd with ****-987/****")
    assert len(text) <= 500


def test_removal_impact_totals_every_kind() -> None:
    impact = RemovalImpact(category_changes=3, notes=2, cost_basis_changes=1, manual_transactions=2)
    assert impact.total == 8
    assert impact.to_dict()["total"] == 8
