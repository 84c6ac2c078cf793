"""Which live tests the user's checklist answers may complete: an accepted key with only unseen items open."""

from __future__ import annotations

from typing import Any

from bot.types.confirmation import CONFIRMABLE, NEVER_CONFIRMABLE, open_items_to_confirm, settled_by
from bot.types.diagnosis import Diagnosis, Item, ItemOutcome, Status, Unavailable


def outcome(unavailable: Unavailable | None = None, **statuses: Status) -> dict[str, Any]:
    items = tuple(ItemOutcome(item, statuses.get(item.value, Status.PASS)) for item in Item)
    return Diagnosis("crypto_com", items, unavailable=unavailable).to_dict()


# What Crypto.com's sandbox says of a valid key: it accepted it, but reports no permissions and no allow-list.
CRYPTO_COM_VALID = outcome(no_trade_or_withdraw=Status.UNKNOWN, no_ip_restriction=Status.UNKNOWN)
# Crypto.com's 40101: "authentication failure" for a wrong key and a wrong secret alike.
CRYPTO_COM_40101 = outcome(
    key_known=Status.UNKNOWN,
    secret_ok=Status.UNKNOWN,
    activated=Status.UNKNOWN,
    read_permission=Status.UNKNOWN,
    no_trade_or_withdraw=Status.UNKNOWN,
    no_ip_restriction=Status.UNKNOWN,
    has_activity=Status.UNKNOWN,
)


def test_an_accepted_key_needs_only_its_unseen_items_confirmed() -> None:
    assert open_items_to_confirm(CRYPTO_COM_VALID) == {Item.NO_TRADE_OR_WITHDRAW, Item.NO_IP_RESTRICTION}
    assert settled_by(CRYPTO_COM_VALID, [Item.NO_TRADE_OR_WITHDRAW, Item.NO_IP_RESTRICTION])
    assert settled_by(CRYPTO_COM_VALID, ["no_trade_or_withdraw", "no_ip_restriction"])


def test_one_unconfirmed_item_keeps_the_test_open() -> None:
    assert not settled_by(CRYPTO_COM_VALID, [Item.NO_IP_RESTRICTION])
    assert not settled_by(CRYPTO_COM_VALID, [])


def test_a_refused_key_is_never_settled_by_the_users_word() -> None:
    assert open_items_to_confirm(CRYPTO_COM_40101) is None
    assert not settled_by(CRYPTO_COM_40101, list(Item))


def test_the_secret_must_have_passed_not_merely_be_unknown() -> None:
    for item in (Item.KEY_KNOWN, Item.SECRET_OK, Item.PASSPHRASE_OK, Item.FORMAT):
        assert not settled_by(outcome(**{item.value: Status.UNKNOWN}), list(Item)), item
    assert not settled_by(outcome(secret_ok=Status.NOT_APPLICABLE), list(Item))
    assert settled_by(outcome(passphrase_ok=Status.NOT_APPLICABLE), [])


def test_a_failed_item_is_never_confirmed_away() -> None:
    failed = outcome(no_ip_restriction=Status.FAIL, has_activity=Status.UNKNOWN)
    assert open_items_to_confirm(failed) is None
    assert not settled_by(failed, list(Item))


def test_an_unavailable_exchange_or_a_remembered_refusal_is_no_test() -> None:
    down = outcome(Unavailable("server_error", "HTTP 503"), no_ip_restriction=Status.UNKNOWN)
    assert not settled_by(down, list(Item))
    remembered = {**CRYPTO_COM_VALID, "refused_before_s": 12}
    assert not settled_by(remembered, list(Item))


def test_a_partial_or_foreign_record_is_no_test() -> None:
    assert not settled_by({"items": CRYPTO_COM_VALID["items"][:-1], "unavailable": None}, list(Item))
    assert not settled_by({}, list(Item))


def test_only_what_the_user_can_see_is_confirmable() -> None:
    assert NEVER_CONFIRMABLE == {Item.FORMAT, Item.KEY_KNOWN, Item.SECRET_OK, Item.PASSPHRASE_OK}
    assert CONFIRMABLE | NEVER_CONFIRMABLE == set(Item)
