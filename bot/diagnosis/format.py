"""Format checks, before any request: what a copy-and-paste typically breaks.

Generic checks first (missing fields, surrounding or inner whitespace, line breaks, quotes, invisible
characters), then the exchange's own shape (`ExchangeClient.shape_problems`: lengths, alphabets, truncation,
Coinbase legacy keys, a Kraken secret that isn't base64, …). Messages name the field and the problem, never
the value.

One repair is made, and always reported: a Coinbase PEM private key pasted with literal `\\n` instead of line
breaks (a JSON-escaped copy) is read with real line breaks. The repaired credentials are returned so the
caller stores what was tested.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Final

from bot.exchanges._base import ExchangeClient
from bot.secret import Secret
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item, ItemOutcome, Status

__all__ = ["FormatResult", "check_format"]

_QUOTES: Final = ('"', "'", "`", "“", "”", "‘", "’")


@dataclass(frozen=True)
class FormatResult:
    """The FORMAT outcome, and the credentials to test (repaired when a repair was reported)."""

    outcome: ItemOutcome
    credentials: Credentials

    @property
    def ok(self) -> bool:
        return self.outcome.status is Status.PASS


def check_format(client: type[ExchangeClient], credentials: Credentials) -> FormatResult:
    """Check what the user pasted for `client`'s exchange, without sending anything."""
    notes: list[str] = []
    secret = credentials.api_secret.reveal()
    if "-----BEGIN" in secret:
        secret, repaired = _repair_pem(secret)
        if repaired:
            notes.append(
                "The private key was pasted with \\n in place of line breaks; KeyMedic read them as line "
                "breaks. When you save the key, paste it with its real line breaks."
            )
        credentials = dataclasses.replace(credentials, api_secret=Secret(secret))

    problems = _generic_problems(client, credentials)
    if not problems:
        problems = client.shape_problems(credentials)
    if problems:
        outcome = ItemOutcome(
            Item.FORMAT, Status.FAIL, fix=" ".join(problems), detail=" ".join(notes) or None
        )
    else:
        outcome = ItemOutcome(Item.FORMAT, Status.PASS, detail=" ".join(notes) or None)
    return FormatResult(outcome=outcome, credentials=credentials)


def _repair_pem(text: str) -> tuple[str, bool]:
    text = text.strip()
    if "\\n" in text and "\n" not in text:
        return text.replace("\\n", "\n"), True
    return text, False


def _generic_problems(client: type[ExchangeClient], credentials: Credentials) -> list[str]:
    problems = []
    fields: list[tuple[str, str | None, bool]] = [
        # A PEM pasted as the key is a swap, which the exchange's shape check names.
        ("API key", credentials.api_key, "-----BEGIN" in credentials.api_key),
        ("API secret", credentials.api_secret.reveal(), "-----BEGIN" in credentials.api_secret.reveal()),
        ("passphrase", credentials.passphrase.reveal() if credentials.passphrase else None, False),
    ]
    for label, value, is_pem in fields:
        if value is None or value == "":
            if label != "passphrase":
                problems.append(f"The {label} is empty.")
            elif client.needs_passphrase:
                problems.append(
                    "This exchange creates each key with a passphrase (the one you typed when creating the "
                    "key). Enter it too; if you don't have it, create a new key and save its passphrase."
                )
            continue
        if is_pem:
            # A PEM block is lines by nature; surrounding whitespace is harmless and was stripped.
            continue
        problems += _text_problems(label, value, inner_spaces_allowed=label == "passphrase")
    return problems


def _text_problems(label: str, value: str, *, inner_spaces_allowed: bool) -> list[str]:
    problems = []
    if value != value.strip():
        problems.append(
            f"The {label} has a space or line break at the start or end. Remove it (copy just the {label})."
        )
    core = value.strip()
    if any(c in "\r\n" for c in core):
        problems.append(
            f"The {label} contains a line break: it was probably copied across two lines. Copy it again as "
            "one piece."
        )
    elif not inner_spaces_allowed and any(c.isspace() for c in core):
        problems.append(f"The {label} contains a space in the middle. Copy it again as one piece.")
    if len(core) >= 2 and core[0] in _QUOTES and core[-1] in _QUOTES:
        problems.append(f"The {label} is wrapped in quotes. Paste it without the quotes.")
    if any(unicodedata.category(c) in ("Cf", "Co", "Cn") or (not c.isascii() and c.isspace()) for c in core):
        problems.append(
            f"The {label} contains an invisible character (often picked up when copying from a web page or "
            "a chat). Copy it again, or type it in."
        )
    return problems
