"""`channels.screening.screen`: what every channel does to a message before Rasa sees it."""

from __future__ import annotations

from bot.redaction import REDACTED
from bot.sandbox.scenarios import credentials_for
from channels.screening import REDACTED_METADATA_KEY, screen

FORM_TOKEN = "it_" + "Q" * 20 + "w" * 20 + "-_9"


def test_a_pasted_form_link_is_taken_out_without_asking_to_revoke_a_key() -> None:
    screened = screen(f"this link http://127.0.0.1:8080/intake/form#token={FORM_TOKEN} fails", None)
    assert FORM_TOKEN not in screened.text
    assert REDACTED in screened.text
    # Nothing to revoke: the channel's revoke notice goes out only for kinds, and there are none.
    assert screened.kinds == ()
    assert screened.metadata is None


def test_a_pasted_key_is_reported_by_kind() -> None:
    secret = credentials_for("kraken", "valid")["api_secret"]
    screened = screen(f"secret {secret}", {"note": FORM_TOKEN})
    assert secret not in screened.text
    assert screened.kinds == ("kraken_secret",)
    assert screened.metadata == {"note": REDACTED, REDACTED_METADATA_KEY: ["kraken_secret"]}
