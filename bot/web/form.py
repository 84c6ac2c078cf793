"""The credential form's HTML pages: self-contained (one inline stylesheet, no external asset), so a strict
Content-Security-Policy can forbid everything else (`PAGE_CSP`). Only the opener page (`render_opener`) has a
script, allowed by its hash (`OPENER_CSP`): it moves the link's token from the URL fragment into a POST.

The form is a plain HTML form posting to `SUBMIT_PATH`; the web app answers a browser with one of these pages
(received, or the form again with the precise error, or why the link cannot be used). Nothing posted is ever
written back into a page: after an error the inputs start empty.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape
from typing import Final

from bot.exchange_ids import DISPLAY_NAMES
from bot.intake import (
    UNKNOWN_TOKEN_MESSAGE,
    FieldSpec,
    IntakeBinding,
    IntakeError,
    Receipt,
    SubmissionInvalid,
    fields_for,
)

__all__ = ["PAGE_CSP", "OPENER_CSP", "render_opener", "render_form", "render_received", "render_refused"]

_STYLE: Final = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0; padding: 1rem; }
main { max-width: 32rem; margin: 0 auto; }
h1 { font-size: 1.4rem; }
label { display: block; font-weight: 600; margin-top: 1rem; }
input, select { box-sizing: border-box; width: 100%; padding: .5rem; font: inherit; font-family: monospace; }
input:focus, select:focus, button:focus { outline: 3px solid #1a73e8; outline-offset: 2px; }
.hint { margin: .25rem 0 0; font-size: .9rem; }
.error { border: 2px solid #b00020; padding: .5rem 1rem; margin: 1rem 0; }
.received { border: 2px solid #1b7f3b; padding: .5rem 1rem; margin: 1rem 0; }
button { margin-top: 1.5rem; padding: .6rem 1.2rem; font: inherit; font-weight: 600; cursor: pointer; }
code { word-break: break-all; }
"""
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# Everything is forbidden except this page's own stylesheet and posting the form back to this origin; no
# framing (a credential form inside someone else's page invites clickjacking), no <base> rewriting.
PAGE_CSP: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


# The opener's only script: take the token out of the fragment (and out of the address bar and history),
# then post it to this same path, which answers with the form. A fragment is never sent to a server.
_OPENER_SCRIPT: Final = """
(function () {
  var match = /^#token=(it_[A-Za-z0-9_-]{43})$/.exec(window.location.hash);
  window.history.replaceState(null, "", window.location.pathname);
  if (!match) { document.getElementById("missing").hidden = false; return; }
  var form = document.getElementById("open");
  form.elements.token.value = match[1];
  form.submit();
})();
"""
_OPENER_HASH: Final = base64.b64encode(hashlib.sha256(_OPENER_SCRIPT.encode()).digest()).decode()
OPENER_CSP: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; script-src 'sha256-{_OPENER_HASH}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def render_opener() -> str:
    """The page a form link opens: its script posts the link's token (from the fragment) for the form."""
    body = (
        "<h1>Opening the secure form…</h1>\n"
        '<form id="open" method="post" action="/intake/form">\n'
        '<input type="hidden" name="token" value="">\n'
        '<noscript><p class="error">This page needs JavaScript to open the form without putting its '
        "one-time link in any server's log.</p></noscript>\n"
        "</form>\n"
        '<div id="missing" class="error" role="alert" hidden>\n'
        f"<p>{escape(UNKNOWN_TOKEN_MESSAGE)}</p>\n</div>\n"
        f"<script>{_OPENER_SCRIPT}</script>\n"
    )
    return _page("Secure form", body)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(title)} · KeyMedic</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def _exchange_name(exchange: str) -> str:
    return next((name for known, name in DISPLAY_NAMES.items() if known == exchange), exchange)


def _input(spec: FieldSpec, error: IntakeError | None) -> str:
    described = f' aria-describedby="{spec.name}-hint"' if spec.hint else ""
    invalid = ' aria-invalid="true"' if error is not None and error.field == spec.name else ""
    required = " required" if spec.required else ""
    hint = f'<p class="hint" id="{spec.name}-hint">{escape(spec.hint)}</p>\n' if spec.hint else ""
    label = f'<label for="{spec.name}">{escape(spec.label)}{"" if spec.required else " (optional)"}</label>\n'
    if spec.choices:
        options = '<option value="">Not sure</option>' + "".join(
            f'<option value="{escape(choice)}">{escape(choice)}</option>' for choice in spec.choices
        )
        control = f'<select id="{spec.name}" name="{spec.name}"{described}{invalid}>{options}</select>\n'
    else:
        # Secrets are password inputs: not shown on screen, not kept by the browser's form history.
        kind = "password" if spec.secret else "text"
        control = (
            f'<input id="{spec.name}" name="{spec.name}" type="{kind}" maxlength="{spec.max_length}" '
            'autocomplete="off" autocapitalize="none" autocorrect="off" spellcheck="false"'
            f"{required}{described}{invalid}>\n"
        )
    return label + control + hint


def render_form(binding: IntakeBinding, token: str, *, error: IntakeError | None = None) -> str:
    """The credential form for the wallet a token is bound to; with `error`, why the last try failed."""
    name = _exchange_name(binding.exchange)
    alert = ""
    if error is not None:
        alert = (
            '<div class="error" role="alert">\n<h2>Your key was not sent</h2>\n'
            f"<p>{escape(error.message)}</p>\n<p>Please enter it again.</p>\n</div>\n"
        )
    inputs = "".join(_input(spec, error) for spec in fields_for(binding.exchange))
    body = (
        f"<h1>Update your {escape(name)} API key</h1>\n"
        f"<p>Paste the new <strong>read-only</strong> key you created on {escape(name)}. It goes straight "
        "to KeyMedic's encrypted store; the chat only receives a reference, never the key itself.</p>\n"
        f"{alert}"
        '<form method="post" action="/intake/credentials" autocomplete="off">\n'
        f'<input type="hidden" name="token" value="{escape(token)}">\n'
        f'<input type="hidden" name="wallet_id" value="{binding.wallet_id}">\n'
        f"{inputs}"
        '<button type="submit">Send key securely</button>\n'
        "</form>\n"
        f'<p class="hint">This link works once, until {_time(binding.expires_at)}.</p>\n'
    )
    return _page(f"Update your {name} API key", body)


def _time(moment: datetime) -> str:
    return escape(moment.strftime("%H:%M UTC"))


def render_received(receipt: Receipt) -> str:
    """The page after a successful submission."""
    body = (
        "<h1>Key received</h1>\n"
        '<div class="received" role="status">\n'
        f"<p>KeyMedic received the key {escape(receipt.api_key_masked)} and stored it encrypted.</p>\n"
        "<p><strong>Go back to the chat</strong>: the assistant will test the key and tell you what it "
        "finds.</p>\n"
        f"<p>Reference: <code>{escape(receipt.reference)}</code></p>\n"
        "</div>\n"
        "<p>You can close this page.</p>\n"
    )
    return _page("Key received", body)


def render_refused(error: IntakeError) -> str:
    """The page when the link cannot be used (or the request could not be read)."""
    title = "Your key was not sent" if isinstance(error, SubmissionInvalid) else "This link cannot be used"
    body = (
        f"<h1>{escape(title)}</h1>\n"
        f'<div class="error" role="alert">\n<p>{escape(error.message)}</p>\n</div>\n'
    )
    return _page(title, body)
