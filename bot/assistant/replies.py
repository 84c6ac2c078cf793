"""What KeyMedic says about a live test, a resync or a removal: plain text built from `bot` results.

Kept apart from the actions so the wording is tested without Rasa, and so every channel (widget, Slack, the
terminal) gets the same sentences.
"""

from __future__ import annotations

from bot.assistant.desk import SyncReport
from bot.exchange_ids import EXCHANGE_IDS, display_name
from bot.store.model import RemovalImpact
from bot.types.diagnosis import Diagnosis, Item

__all__ = [
    "exchange_title",
    "key_check_reply",
    "needs_checklist",
    "sync_started_reply",
    "sync_report_reply",
    "removal_impact_reply",
    "removal_warning_reply",
    "csv_backup_reply",
    "removal_walkthrough_reply",
]

# Items a user can act on from the chat, named the way the article's checklist names them.
_ITEM_NAMES: dict[Item, str] = {
    Item.FORMAT: "the key was copied whole",
    Item.KEY_KNOWN: "the exchange knows the key",
    Item.SECRET_OK: "the secret matches the key",
    Item.PASSPHRASE_OK: "the passphrase matches",
    Item.ACTIVATED: "the key is activated",
    Item.READ_PERMISSION: "the key can read your history",
    Item.NO_TRADE_OR_WITHDRAW: "trading and withdrawals are off",
    Item.NO_IP_RESTRICTION: "no IP restriction is set",
    Item.HAS_ACTIVITY: "the account has transactions",
}


def exchange_title(exchange: str) -> str:
    """The display name of an exchange id, or the id itself for anything unexpected."""
    for known in EXCHANGE_IDS:
        if known == exchange:
            return display_name(known)
    return exchange


def key_check_reply(diagnosis: Diagnosis) -> str:
    """One message: each failing item with its fix, or that the exchange could not answer, or a pass."""
    name = exchange_title(diagnosis.exchange)
    if diagnosis.unavailable is not None:
        wait = diagnosis.unavailable.retry_after_s
        when = f"in about {max(1, round(wait))} seconds" if wait else "in a minute or two"
        return (
            f"I couldn't get an answer from {name} just now ({diagnosis.unavailable.message}). That's on "
            f"{name}'s side and says nothing about your key, so nothing was changed. Let's try again {when}."
        )
    failing = diagnosis.failing()
    if diagnosis.refused_before_s is not None:
        # A remembered refusal (bot/diagnosis/refusals.py): say so, and why, rather than test it again.
        minutes = max(1, round(diagnosis.refused_before_s / 60))
        lines = [
            f"{name} already refused this exact key {minutes} minute{'s' if minutes != 1 else ''} ago, so I "
            "didn't send it again: repeated attempts with a refused key can get it locked. What it said:"
        ]
        lines += [f"• {o.fix or _ITEM_NAMES[o.item].capitalize() + ': not yet.'}" for o in failing]
        lines += [f"• {o.fix}" for o in diagnosis.unknown() if o.fix and o.raw_code]
        lines.append("Nothing was saved. Fix what's listed (or create a new key), then send it again.")
        return "\n".join(lines)
    if failing:
        lines = [f"Your new {name} key doesn't work yet. Here's what to fix:"]
        lines += [f"• {o.fix or _ITEM_NAMES[o.item].capitalize() + ': not yet.'}" for o in failing]
        lines.append(
            "Nothing was saved, so your connection is as it was. Once you've fixed it, send the key again."
        )
        return "\n".join(lines)
    if diagnosis.unknown():
        checked = [o for o in diagnosis.items if o.status.value == "pass"]
        return (
            f"{name} accepted the key ({len(checked)} checks passed), but it doesn't tell me everything, "
            "so I need to ask you a couple of things before I save it."
        )
    return (
        f"Your new {name} key passed every check: it's active, can read your history, "
        "and can't trade or withdraw."
    )


def needs_checklist(diagnosis: Diagnosis) -> bool:
    """Whether the user must answer checklist questions: the exchange answered, nothing failed, some not
    settled."""
    return diagnosis.unavailable is None and not diagnosis.failing() and bool(diagnosis.unknown())


def sync_started_reply(exchange: str, masked_key: str) -> str:
    name = exchange_title(exchange)
    return (
        f"Done: your existing {name} connection now uses the new key ({masked_key}), with your history and "
        "edits in place. I've started a resync and will tell you what it brings in."
    )


def sync_report_reply(exchange: str, report: SyncReport) -> str:
    name = exchange_title(exchange)
    if report.status in ("queued", "running"):
        return f"The {name} resync is still running. I'll tell you when it's done."
    if report.status == "failed":
        return (
            f"The {name} resync didn't finish ({report.error or 'no reason given'}). "
            "Your wallet is exactly as it was before it started; nothing was lost."
        )
    changes = []
    if report.added:
        changes.append(f"{report.added} new transaction{'s' if report.added != 1 else ''}")
    if report.updated:
        changes.append(f"{report.updated} updated")
    if report.unchanged:
        changes.append(f"{report.unchanged} already up to date")
    summary = ", ".join(changes) if changes else "nothing new"
    return f"Your {name} wallet is syncing again: {summary}. Your manual edits were kept."


def removal_impact_reply(exchange: str, impact: RemovalImpact) -> str:
    """The article's warning with this wallet's real numbers, and support offered first."""
    name = exchange_title(exchange)
    if impact.total == 0:
        at_stake = f"You have no manual edits on {name} right now, so removing it would lose none"
    else:
        kinds = [
            (impact.category_changes, "category change", "category changes"),
            (impact.notes, "note", "notes"),
            (impact.cost_basis_changes, "cost-basis change", "cost-basis changes"),
            (impact.manual_transactions, "manually added transaction", "manually added transactions"),
        ]
        parts = [f"{count} {one if count == 1 else many}" for count, one, many in kinds if count]
        edits = "manual edit" if impact.total == 1 else "manual edits"
        at_stake = f"Removing {name} would permanently delete {impact.total} {edits}: " + ", ".join(parts)
    return (
        f"{at_stake}. Re-adding the exchange brings back its transactions but not your edits, so removal "
        "is a last resort. Let our support team look at it first; they'll confirm whether removal is "
        "really the fix."
    )


def removal_warning_reply() -> str:
    """The article's warning when KeyMedic does not know which wallet the user means."""
    return (
        "Before removing an exchange, please know what it costs: removing it deletes every manual edit on "
        "its transactions (category changes, notes, cost-basis tweaks and transactions you added by hand). "
        "Re-adding it brings back the exchange's transactions but not your edits. Let our support team check "
        "it first; removal should only happen once they confirm it's the right fix."
    )


def csv_backup_reply() -> str:
    """The article's CSV backup when KeyMedic does not know the exchange."""
    return (
        "While the API connection is being sorted out, you can keep your history complete with a CSV: most "
        "exchanges let you export your transaction history as a CSV file, which you can then upload."
    )


_CHECKLIST_FIXES: dict[Item, str] = {
    Item.FORMAT: "Copy the {key} and {secret} again in full, with no spaces or line breaks, into a new form.",
    Item.PASSPHRASE_OK: (
        "Enter the passphrase exactly as you set it on {name}; if you no longer have it, create a new key "
        "and save its passphrase."
    ),
    Item.READ_PERMISSION: "Turn on read access for the key, or create a new key with read access.",
    Item.NO_TRADE_OR_WITHDRAW: "Create a new key with read access only, leaving withdrawals and trading off.",
    Item.ACTIVATED: "Confirm the key through {name}'s email or 2FA prompt, then send it again.",
    Item.NO_IP_RESTRICTION: "Remove the IP restriction from the key, or create a new key without one.",
    Item.HAS_ACTIVITY: (
        "The sync can only bring in history once the account has at least one deposit or trade; until then "
        "there's nothing to import."
    ),
}


def checklist_fix(item: Item, *, name: str, key_label: str, secret_label: str) -> str:
    """What to do when the user answered "no" to the checklist question headed by `item`."""
    return _CHECKLIST_FIXES[item].format(name=name, key=key_label, secret=secret_label)


def removal_walkthrough_reply(exchange: str, impact: RemovalImpact) -> str:
    """Removal steps — only ever sent once support approved removal on the conversation's ticket."""
    name = exchange_title(exchange)
    lost = (
        f"{impact.total} manual edit{'s' if impact.total != 1 else ''}" if impact.total else "no manual edits"
    )
    return (
        f"Support approved removing {name}. Removing it deletes {lost} for good; re-adding brings back "
        f"{name}'s transactions but not those edits. When you're ready: on the Wallets page, select {name} "
        "and remove it from its [...] menu, then add it again from the Add wallet page with your new API key "
        "and let it sync."
    )
