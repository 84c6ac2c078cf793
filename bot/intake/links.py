"""What the bot sends for the credential form: the one-time link (Slack) and the widget's form payload.

The two paths are the contract between the bot and the web app, which serves them (`bot.web.app`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode

from bot.intake.fields import fields_for
from bot.intake.tokens import INTAKE_TOKEN_TTL

__all__ = ["FORM_PATH", "SUBMIT_PATH", "CREDENTIAL_FORM_TYPE", "intake_form_url", "credential_form_payload"]

FORM_PATH: Final = "/intake/form"
SUBMIT_PATH: Final = "/intake/credentials"


def intake_form_url(base_url: str, token: str) -> str:
    """The one-time link to the credential form (Slack, or a widget that opens the page).

    The token is in the fragment, which a browser never sends: no proxy, access log or Referer holds it.
    The page's script posts it (`bot.web.form.render_opener`)."""
    return f"{base_url.rstrip('/')}{FORM_PATH}#{urlencode({'token': token})}"


# The custom message type the widget renders as the credential form (widget/src/keymedic-widget.js).
CREDENTIAL_FORM_TYPE = "keymedic_credential_form"


def credential_form_payload(
    base_url: str, token: str, *, wallet_id: int, exchange: str, expires_in: timedelta = INTAKE_TOKEN_TTL
) -> dict[str, Any]:
    """The credential-form payload the bot sends the widget (a custom message): what to render and where to
    post it. The widget posts `{"token", "wallet_id", <fields>}` as JSON to `submit_url` and sends the bot
    only the `reference` of the answer."""
    return {
        "type": CREDENTIAL_FORM_TYPE,
        "form_url": intake_form_url(base_url, token),
        "submit_url": f"{base_url.rstrip('/')}{SUBMIT_PATH}",
        "token": token,
        "wallet_id": wallet_id,
        "exchange": exchange,
        "expires_in_s": int(expires_in.total_seconds()),
        "fields": [spec.to_dict() for spec in fields_for(exchange)],
    }
