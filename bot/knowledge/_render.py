"""Texts the bot's actions show, built from an `ExchangeGuide`: pure functions, no I/O.

They follow the help article (`reference/update-api-key-article.txt`): its rules for a new key, in its order
(read-only permissions, passphrase, activation, no IP restriction, account activity), its checklist in its
order (full key and secret, passphrase, read access, active, no IP restriction, activity) and its CSV backup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from bot.knowledge._guides import ExchangeGuide
from bot.types.diagnosis import Item

__all__ = [
    "ChecklistQuestion",
    "CHECKLIST_ORDER",
    "new_key_steps",
    "checklist_questions",
    "csv_backup_steps",
    "api_page_link",
]


@dataclass(frozen=True)
class ChecklistQuestion:
    """One question for the user, and the checklist items a "yes" or "no" to it settles."""

    items: tuple[Item, ...]
    text: str


# The article's checklist order. Withdrawal and trading staying off isn't on the article's checklist, but its
# first rule says so, so that question follows read access.
CHECKLIST_ORDER: Final[tuple[tuple[Item, ...], ...]] = (
    (Item.FORMAT, Item.KEY_KNOWN, Item.SECRET_OK),
    (Item.PASSPHRASE_OK,),
    (Item.READ_PERMISSION,),
    (Item.NO_TRADE_OR_WITHDRAW,),
    (Item.ACTIVATED,),
    (Item.NO_IP_RESTRICTION,),
    (Item.HAS_ACTIVITY,),
)


def new_key_steps(guide: ExchangeGuide) -> list[str]:
    """How to create a working key on this exchange: where, then the article's rules in its order."""
    steps = [_create_step(guide), _permissions_step(guide)]
    if guide.passphrase.note is not None:
        # A passphrase to save, or (Coinbase) what to save instead of one.
        steps.append(guide.passphrase.note)
    steps.append(_sentences(_activation_intro(guide), guide.activation))
    steps.append(_ip_step(guide))
    steps.append(
        _sentences(
            "Make sure the account has activity: the sync can only find history once there's at least one "
            "deposit or trade.",
            guide.activity,
        )
    )
    return steps


def checklist_questions(guide: ExchangeGuide, items: Iterable[Item]) -> list[ChecklistQuestion]:
    """Questions for just these items (those a live test left open), in the article's checklist order.
    A passphrase question is never asked for an exchange whose keys have none."""
    asked = set(items)
    questions = []
    for group in CHECKLIST_ORDER:
        covered = tuple(item for item in group if item in asked)
        if not covered:
            continue
        text = _question(guide, group[0])
        if text is not None:
            questions.append(ChecklistQuestion(items=covered, text=text))
    return questions


def csv_backup_steps(guide: ExchangeGuide) -> list[str]:
    """The article's backup while the API connection is being fixed: export a CSV, then upload it."""
    return [
        _sentences(f"Export your transaction history from {guide.name} as a CSV file.", guide.csv_export),
        "Upload that CSV file, so your transaction history stays complete while the API connection is sorted "
        "out.",
    ]


def api_page_link(guide: ExchangeGuide) -> tuple[str, str] | None:
    """A (label, https URL) button for making the key: the exchange's API key page when known, otherwise its
    own guide to API keys; None when there is neither."""
    if guide.api_page.settings_url is not None:
        return f"Open {guide.name}'s API settings", guide.api_page.settings_url
    if guide.api_page.help_url is not None and guide.api_page.help_label is not None:
        return guide.api_page.help_label, guide.api_page.help_url
    return None


def _create_step(guide: ExchangeGuide) -> str:
    return _sentences(guide.api_page.where, guide.create_note)


def _permissions_step(guide: ExchangeGuide) -> str:
    permissions = guide.permissions
    if permissions.turn_on:
        turn_on = f"Give the key read access only: turn on {_join(permissions.turn_on, 'and')}."
    else:
        turn_on = "Give the key read access only."
    if permissions.leave_off:
        leave_off = f"Leave these off: {_join(permissions.leave_off, 'and')}."
    else:
        leave_off = "Leave withdrawal and trading permissions off."
    return _sentences(
        turn_on,
        leave_off,
        "Syncing only reads your transaction history and never moves funds.",
        permissions.note,
    )


def _activation_intro(guide: ExchangeGuide) -> str:
    return (
        f"Activate the key if {guide.name} asks you to: most exchanges only switch a new key on once you "
        "confirm it by email or 2FA."
    )


def _ip_step(guide: ExchangeGuide) -> str:
    setting = guide.ip_restriction.setting
    return _sentences(
        f"Leave IP restrictions off: don't add any IP addresses to the key's {setting}. Syncing doesn't come "
        "from a fixed IP address, so a restriction would block it.",
        guide.ip_restriction.note,
    )


def _question(guide: ExchangeGuide, first: Item) -> str | None:
    permissions = guide.permissions
    if first is Item.FORMAT:
        return f"Did you copy the full {guide.labels.key} and {guide.labels.secret}, with no extra spaces?"
    if first is Item.PASSPHRASE_OK:
        if not guide.passphrase.created:
            return None
        return f"Does the passphrase you entered match exactly the one you set on {guide.name} for this key?"
    if first is Item.READ_PERMISSION:
        named = f" ({_join(permissions.turn_on, 'and')})" if permissions.turn_on else ""
        return f"Is read access turned on for the key{named}?"
    if first is Item.NO_TRADE_OR_WITHDRAW:
        named = f" ({_join(permissions.leave_off, 'and')})" if permissions.leave_off else ""
        return f"Are withdrawal and trading permissions left off{named}?"
    if first is Item.ACTIVATED:
        return _sentences(
            f"Is the key active on {guide.name}? Some exchanges only switch a key on after you confirm it by "
            "email or 2FA.",
            guide.activation,
        )
    if first is Item.NO_IP_RESTRICTION:
        setting = guide.ip_restriction.setting
        return f"Is the key free of IP restrictions, with no IP addresses in its {setting}?"
    if first is Item.HAS_ACTIVITY:
        return _sentences(
            f"Does your {guide.name} account have at least one transaction, such as a deposit or a trade?",
            guide.activity,
        )
    raise AssertionError(f"no checklist question for {first}")  # pragma: no cover - CHECKLIST_ORDER's heads


def _sentences(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


def _join(words: Sequence[str], conjunction: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"
