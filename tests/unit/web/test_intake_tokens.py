"""One-time intake tokens: binding, lifetime (injected clock), single use, wrong user and wrong wallet."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from bot import intake
from bot.store import services
from bot.web.intake import status_of
from tests.unit.web.intake_fakes import FakeIntakeUnitOfWork

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
USER, OTHER_USER = 7, 8


@pytest.fixture
def uow() -> FakeIntakeUnitOfWork:
    return FakeIntakeUnitOfWork()


def issue(uow: FakeIntakeUnitOfWork, wallet_id: int, **kwargs: object) -> str:
    return intake.issue_intake_token(
        uow, user_id=USER, conversation_id="conv-1", wallet_id=wallet_id, now=NOW, **kwargs
    )  # type: ignore[arg-type]


def test_a_token_is_random_and_only_its_hash_is_stored(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    first, second = issue(uow, wallet_id), issue(uow, wallet_id)

    assert re.fullmatch(r"it_[A-Za-z0-9_-]{43}", first) and first != second
    rows = uow.intake_tokens.rows  # type: ignore[attr-defined]
    assert len(rows) == 2
    for row in rows:
        assert first not in repr(vars(row)) and second not in repr(vars(row))
        assert (row.user_id, row.wallet_id, row.conversation_id) == (USER, wallet_id, "conv-1")
        assert row.expires_at == NOW + timedelta(minutes=10)


def test_the_binding_names_user_conversation_wallet_and_exchange(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kucoin")
    token = issue(uow, wallet_id)

    binding = intake.inspect_intake_token(uow, token, now=NOW)

    assert (binding.user_id, binding.conversation_id, binding.wallet_id, binding.exchange) == (
        USER,
        "conv-1",
        wallet_id,
        "kucoin",
    )


def test_a_token_is_only_issued_for_the_users_own_wallet(uow: FakeIntakeUnitOfWork) -> None:
    foreign = uow.add_user_wallet(user_id=OTHER_USER, exchange="kraken")
    with pytest.raises(services.NotFound):
        issue(uow, foreign)
    with pytest.raises(services.NotFound):
        issue(uow, 999)
    assert uow.intake_tokens.rows == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kwargs", [{"ttl": timedelta(0)}, {"conversation_id": ""}, {"conversation_id": "c" * 256}]
)
def test_issue_refuses_a_bad_lifetime_or_conversation_id(
    uow: FakeIntakeUnitOfWork, kwargs: dict[str, object]
) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    arguments: dict[str, object] = {
        "user_id": USER,
        "conversation_id": "conv-1",
        "wallet_id": wallet_id,
        **kwargs,
    }
    with pytest.raises(ValueError):
        intake.issue_intake_token(uow, **arguments)  # type: ignore[arg-type]


def test_a_token_redeems_once(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id)

    binding = intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=wallet_id, now=NOW)
    assert binding.wallet_id == wallet_id
    with pytest.raises(intake.TokenUsed) as used:
        intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=wallet_id, now=NOW)
    assert status_of(used.value) == 409 and used.value.code == "token_used"
    with pytest.raises(intake.TokenUsed):
        intake.inspect_intake_token(uow, token, now=NOW)


def test_inspecting_a_token_does_not_use_it(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id)
    first = intake.inspect_intake_token(uow, token, now=NOW)
    assert intake.inspect_intake_token(uow, token, now=NOW) == first
    assert (first.user_id, first.wallet_id, first.exchange) == (USER, wallet_id, "kraken")
    # Still usable after two looks: redeeming it works once, and then it is used.
    assert intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=wallet_id, now=NOW) == first
    with pytest.raises(intake.TokenUsed):
        intake.inspect_intake_token(uow, token, now=NOW)


def test_a_token_expires_after_its_lifetime(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id)

    last_moment = NOW + timedelta(minutes=10) - timedelta(seconds=1)
    assert intake.inspect_intake_token(uow, token, now=last_moment).wallet_id == wallet_id
    for late in (NOW + timedelta(minutes=10), NOW + timedelta(hours=3)):
        with pytest.raises(intake.TokenExpired) as expired:
            intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=wallet_id, now=late)
        assert status_of(expired.value) == 410
    assert uow.intake_tokens.rows[0].used_at is None  # type: ignore[attr-defined]


def test_a_custom_lifetime_is_honoured(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id, ttl=timedelta(minutes=1))
    with pytest.raises(intake.TokenExpired):
        intake.inspect_intake_token(uow, token, now=NOW + timedelta(minutes=1))


def test_another_users_token_is_refused_and_stays_usable(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id)

    with pytest.raises(intake.WrongUser) as wrong:
        intake.redeem_intake_token(uow, token, user_id=OTHER_USER, wallet_id=wallet_id, now=NOW)
    assert status_of(wrong.value) == 403 and wrong.value.code == "wrong_user"
    intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=wallet_id, now=NOW)


def test_a_token_for_another_wallet_is_refused_and_stays_usable(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    other_wallet = uow.add_user_wallet(user_id=OTHER_USER, exchange="okx")
    token = issue(uow, wallet_id)

    with pytest.raises(intake.WrongWallet) as wrong:
        intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=other_wallet, now=NOW)
    assert wrong.value.code == "wrong_wallet" and wrong.value.field == "wallet_id"
    intake.redeem_intake_token(uow, token, user_id=None, wallet_id=wallet_id, now=NOW)


def test_a_wrong_user_is_told_so_before_anything_about_the_tokens_state(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id)
    intake.redeem_intake_token(uow, token, user_id=USER, wallet_id=wallet_id, now=NOW)
    with pytest.raises(intake.WrongUser):
        intake.inspect_intake_token(uow, token, user_id=OTHER_USER, now=NOW + timedelta(hours=1))


@pytest.mark.parametrize("token", ["it_" + "A" * 43, "not-a-token", "it_short", 12345, ["it_x"]])
def test_unknown_or_malformed_tokens_are_unknown(uow: FakeIntakeUnitOfWork, token: object) -> None:
    uow.add_user_wallet(user_id=USER, exchange="kraken")
    with pytest.raises(intake.TokenUnknown) as unknown:
        intake.inspect_intake_token(uow, token, now=NOW)
    assert status_of(unknown.value) == 404


@pytest.mark.parametrize("token", [None, ""])
def test_a_missing_token_is_a_missing_field(uow: FakeIntakeUnitOfWork, token: object) -> None:
    with pytest.raises(intake.MissingField) as missing:
        intake.inspect_intake_token(uow, token, now=NOW)
    assert missing.value.field == "token"


def test_a_token_of_a_deleted_wallet_is_unknown(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    token = issue(uow, wallet_id)
    uow.wallets.rows.clear()  # type: ignore[attr-defined]
    with pytest.raises(intake.TokenUnknown):
        intake.inspect_intake_token(uow, token, now=NOW)


def test_issuing_forgets_tokens_expired_for_a_day(uow: FakeIntakeUnitOfWork) -> None:
    wallet_id = uow.add_user_wallet(user_id=USER, exchange="kraken")
    old = issue(uow, wallet_id)
    intake.issue_intake_token(
        uow,
        user_id=USER,
        conversation_id="conv-2",
        wallet_id=wallet_id,
        now=NOW + timedelta(days=1, minutes=11),
    )
    with pytest.raises(intake.TokenUnknown):
        intake.inspect_intake_token(uow, old, now=NOW)
    assert len(uow.intake_tokens.rows) == 1  # type: ignore[attr-defined]
