"""The credential form's pages: accessible, self-contained, and never showing what was posted."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timezone

from bot import intake
from bot.web import form

BINDING = intake.IntakeBinding(
    token_id=1,
    user_id=7,
    conversation_id="conv-1",
    wallet_id=42,
    exchange="kucoin",
    expires_at=datetime(2026, 11, 26, 12, 10, tzinfo=timezone.utc),
)
TOKEN = "it_" + "a" * 43


def test_every_input_has_a_label_and_the_secrets_are_password_inputs() -> None:
    page = form.render_form(BINDING, TOKEN)

    for spec in intake.fields_for("kucoin"):
        assert f'<label for="{spec.name}">' in page
        assert f'id="{spec.name}" name="{spec.name}"' in page
    assert re.search(r'<input id="api_secret" name="api_secret" type="password"', page)
    assert re.search(r'<input id="passphrase" name="passphrase" type="password"', page)
    assert re.search(r'<input id="api_key" name="api_key" type="text"', page)
    assert page.count('autocomplete="off"') == 4  # the form and its three text inputs
    assert '<html lang="en">' in page and "<main>" in page and "KuCoin" in page
    assert 'aria-describedby="passphrase-hint"' in page and 'id="passphrase-hint"' in page


def test_the_form_posts_the_token_and_wallet_to_the_intake_endpoint() -> None:
    page = form.render_form(BINDING, TOKEN)
    assert '<form method="post" action="/intake/credentials" autocomplete="off">' in page
    assert f'<input type="hidden" name="token" value="{TOKEN}">' in page
    assert '<input type="hidden" name="wallet_id" value="42">' in page
    assert "12:10 UTC" in page


def test_the_pages_load_nothing_from_anywhere_and_the_csp_allows_exactly_their_style() -> None:
    pages = [
        form.render_form(BINDING, TOKEN),
        form.render_received(
            intake.Receipt("pc_ref", 42, "conv-1", "****wxyz", datetime(2026, 11, 26, tzinfo=timezone.utc))
        ),
        form.render_refused(intake.TokenExpired("expired")),
    ]
    for page in pages:
        assert "<script" not in page and "src=" not in page and "href=" not in page and "http" not in page
        (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in form.PAGE_CSP
    assert "default-src 'none'" in form.PAGE_CSP and "frame-ancestors 'none'" in form.PAGE_CSP


def test_an_error_is_announced_and_marks_its_field() -> None:
    error = intake.MissingField("The API passphrase is missing.", field="passphrase")
    page = form.render_form(BINDING, TOKEN, error=error)
    assert 'role="alert"' in page and "The API passphrase is missing." in page
    assert re.search(r'id="passphrase"[^>]*aria-invalid="true"', page)
    assert page.count('aria-invalid="true"') == 1


def test_text_is_escaped() -> None:
    page = form.render_refused(intake.MalformedBody('<b>& "quoted"</b>'))
    assert "<b>" not in page and "&lt;b&gt;&amp; &quot;quoted&quot;&lt;/b&gt;" in page


def test_the_received_page_shows_the_reference_and_points_back_to_the_chat() -> None:
    receipt = intake.Receipt("pc_abc", 42, "conv-1", "****wxyz", datetime(2026, 11, 26, tzinfo=timezone.utc))
    page = form.render_received(receipt)
    assert "pc_abc" in page and "****wxyz" in page and "Go back to the chat" in page


def test_the_bot_gets_a_link_and_a_widget_payload() -> None:
    url = intake.intake_form_url("https://app.example/", TOKEN)
    assert url == f"https://app.example/intake/form#token={TOKEN}"  # the fragment is never sent
    payload = intake.credential_form_payload("https://app.example", TOKEN, wallet_id=42, exchange="okx")
    assert payload["submit_url"] == "https://app.example/intake/credentials"
    assert payload["form_url"] == url and payload["expires_in_s"] == 600
    assert [f["name"] for f in payload["fields"]] == ["api_key", "api_secret", "passphrase"]
    assert [f["secret"] for f in payload["fields"]] == [False, True, True]
