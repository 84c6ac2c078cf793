"""When the user's word may settle what a live test left open (DESIGN §5: "only after the diagnosis passes").

Some exchanges never report some checklist items for a perfectly good key (Crypto.com: permissions and IP
allow-list; Bitfinex and Coinbase: IP allow-list; Gate.io when it can't single the key out). Such a test ends
with items `unknown` and nothing failed. The checklist then asks the user exactly those items; when the user
confirms each one, the test counts as passed — but only on these terms:

- the exchange answered (no `unavailable`) and it was a real test, not a remembered refusal;
- nothing failed;
- the exchange *accepted the key and secret*: `format`, `key_known` and `secret_ok` passed, and
  `passphrase_ok` passed or does not apply. Those are never taken on the user's word — an `unknown` there
  comes from a refusal the exchange would not explain (Crypto.com's 40101, Gate.io's INVALID_CREDENTIALS),
  and a user's "yes, I copied it right" does not make a refused key work;
- every unknown item is in `CONFIRMABLE` and the user confirmed it.

Why each confirmable item is safe on the user's word, given that the authenticated read worked:
- `no_ip_restriction`, `activated`, `read_permission`, `has_activity`: a wrong answer costs nothing but a
  failed first resync. The old credential stays `previous` until the new one has synced once, a failed sync
  changes nothing, and the user is told how the resync went.
- `no_trade_or_withdraw`: the exchange does not expose it, so the user (looking at the exchange's API page)
  is the only one who can tell. It is the article's own checklist question, the answer is recorded with the
  diagnosis (what, when, which conversation) for support, and KeyMedic itself only ever reads with a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from bot.types.diagnosis import Item, Status

__all__ = ["CONFIRMABLE", "NEVER_CONFIRMABLE", "open_items_to_confirm", "settled_by"]

CONFIRMABLE: Final[frozenset[Item]] = frozenset(
    {
        Item.ACTIVATED,
        Item.READ_PERMISSION,
        Item.NO_TRADE_OR_WITHDRAW,
        Item.NO_IP_RESTRICTION,
        Item.HAS_ACTIVITY,
    }
)
# The exchange accepting the key is the one thing a user cannot vouch for.
NEVER_CONFIRMABLE: Final[frozenset[Item]] = frozenset(Item) - CONFIRMABLE
_ACCEPTED: Final = {Status.PASS.value, Status.NOT_APPLICABLE.value}


def open_items_to_confirm(outcome: Mapping[str, Any]) -> frozenset[Item] | None:
    """The unknown items of a recorded test (`Diagnosis.to_dict()`) that the user's confirmation would settle,
    or None when no confirmation can make this test a pass. Empty when it passed outright."""
    if outcome.get("unavailable") is not None or outcome.get("refused_before_s") is not None:
        return None
    statuses: dict[str, str] = {}
    for row in outcome.get("items") or []:
        if isinstance(row, Mapping):
            statuses[str(row.get("item"))] = str(row.get("status"))
    if set(statuses) != {item.value for item in Item}:
        return None  # not a whole diagnosis: nothing to build on
    if statuses[Item.SECRET_OK.value] != Status.PASS.value:
        return None  # the authenticated read must have worked
    if any(statuses[item.value] not in _ACCEPTED for item in NEVER_CONFIRMABLE):
        return None
    if any(status == Status.FAIL.value for status in statuses.values()):
        return None
    unknown = frozenset(Item(name) for name, status in statuses.items() if status == Status.UNKNOWN.value)
    if not unknown <= CONFIRMABLE:
        return None
    return unknown


def settled_by(outcome: Mapping[str, Any], confirmed: Iterable[Item | str]) -> bool:
    """Whether the user's confirmations settle every open item of this recorded test."""
    open_items = open_items_to_confirm(outcome)
    if open_items is None:
        return False
    names = {value.value if isinstance(value, Item) else value for value in confirmed}
    given = {Item(name) for name in names if name in Item._value2member_map_}
    return open_items <= given
