"""The chat widget in a real browser (Debian's Chromium, driven by Playwright) against the real servers of a
local run: the demo sign-in, a key update through the credential form, the history after a reload, and the
hand-off — all with the keyboard alone."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from bot.config import PROJECT_ROOT
from bot.redaction import REDACTED
from bot.sandbox.scenarios import credentials_for
from channels.identity import session_id_for
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots land here (git-ignored), where CI can collect them as artifacts.
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts"
REPLY_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run scripts/ensure-chromium (make test does)")
    with sync_playwright() as playwright:
        # Debian's Chromium, never a browser Playwright downloads.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Reduced motion on, as a user who asked for it: the typing dots must then stand still.
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 900, "height": 900})
    page = context.new_page()
    # Script errors and Content-Security-Policy violations show up here; the widget must cause none.
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    try:
        yield page
        assert problems == []
    finally:
        context.close()


def _open_widget(page: Page, stack: RasaStack) -> None:
    page.goto(f"{stack.web_url}/widget")
    expect(page.locator(".km-connection")).to_have_text("Connected", timeout=30_000)


def _tab_to(page: Page, is_target: str, limit: int = 30) -> None:
    """Press Tab until `is_target` (a JS expression on `document.activeElement`) holds."""
    for _ in range(limit):
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({is_target}); }})()"):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached {is_target}")


def _watch_typing(page: Page) -> None:
    # The indicator may come and go within a second; record that it was shown at all.
    page.evaluate(
        """() => {
            window.__kmTypingSeen = false;
            const typing = document.querySelector('.km-typing');
            new MutationObserver(() => { if (!typing.hidden) window.__kmTypingSeen = true; })
                .observe(typing, {attributes: true, attributeFilter: ['hidden']});
        }"""
    )


def _screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"widget screenshot: {path}")
    return path


def test_a_key_update_through_the_widget_with_the_keyboard_alone_survives_a_reload(
    page: Page, rasa_stack: RasaStack
) -> None:
    key = credentials_for("kraken", "valid")
    _open_widget(page, rasa_stack)
    log = page.get_by_role("log")
    expect(log).to_have_attribute("aria-live", "polite")

    # Keyboard only: Tab into the labelled message box, type, Enter.
    _tab_to(page, "el && el.labels && el.labels[0] && el.labels[0].textContent === 'Message to KeyMedic'")
    _watch_typing(page)
    page.keyboard.type("my wallet stopped syncing")
    page.keyboard.press("Enter")
    expect(log.locator(".km-msg--user").last).to_have_text(re.compile("my wallet stopped syncing"))

    # Reply buttons: the bot asks which exchange; a key press sends the payload, the chat shows the title.
    choices = log.get_by_role("group", name="Suggested replies").last
    expect(choices.get_by_role("button", name="Kraken")).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    _tab_to(page, "el && el.classList.contains('km-choice') && el.textContent === 'Kraken'")
    page.keyboard.press("Enter")
    expect(log.locator(".km-msg--user").last).to_have_text(re.compile("Kraken$"))
    expect(choices.get_by_role("button", name="Kraken")).to_have_attribute("aria-pressed", "true")
    expect(choices.get_by_role("button", name="Coinbase")).to_be_disabled()

    # The credential form from the bot's payload, with the focus moved into it.
    form = page.get_by_role("form", name="Your new Kraken API key")
    expect(form).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    assert page.evaluate("window.__kmTypingSeen") is True
    expect(page.locator(".km-typing")).to_be_hidden(timeout=REPLY_TIMEOUT_MS)
    assert page.locator(".km-dots span").first.evaluate("el => getComputedStyle(el).animationName") == "none"
    api_key = form.get_by_label("API key")
    expect(api_key).to_be_focused()
    expect(form.get_by_label("API secret")).to_have_attribute("type", "password")

    # A missing secret is named, focused, and what was typed stays.
    page.keyboard.type(key["api_key"])
    _tab_to(page, "el && el.textContent === 'Send key securely'")
    page.keyboard.press("Enter")
    secret = form.get_by_label("API secret")
    expect(secret).to_be_focused()
    expect(secret).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".km-field-error").nth(1)).to_have_text("Enter the API secret.")
    expect(api_key).to_have_value(key["api_key"])
    _screenshot(page, "widget-credential-form")

    page.keyboard.type(key["api_secret"])
    page.keyboard.press("Tab")
    expect(form.get_by_role("button", name="Send key securely")).to_be_focused()
    page.keyboard.press("Enter")

    # The intake took the secret; the chat got only the reference, and the bot tested and swapped the key.
    expect(log.get_by_text(re.compile(r"Key received \(\*{4}"))).to_be_visible(timeout=15_000)
    expect(log.get_by_text(re.compile("passed every check"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(log.get_by_text(re.compile("existing Kraken connection now uses the new key"))).to_be_visible(
        timeout=REPLY_TIMEOUT_MS
    )
    expect(page.get_by_label("Message to KeyMedic")).to_be_focused()
    assert key["api_secret"] not in page.content()
    assert key["api_secret"].encode() not in rasa_stack.tracker_db.read_bytes()
    screenshot = _screenshot(page, "widget-key-update")
    assert screenshot.stat().st_size > 10_000

    # A reload: the same conversation comes back from the server, and the spent form is not offered again.
    page.reload()
    expect(page.locator(".km-connection")).to_have_text("Connected", timeout=30_000)
    log = page.get_by_role("log")
    expect(log.get_by_text("my wallet stopped syncing")).to_be_visible(timeout=15_000)
    expect(log.locator(".km-msg--user", has_text=re.compile("^You said: Kraken$"))).to_have_count(1)
    expect(log.get_by_text(re.compile("I entered my new key in the secure form"))).to_be_visible()
    expect(log.get_by_text(re.compile("passed every check"))).to_be_visible()
    expect(page.get_by_role("form", name="Your new Kraken API key")).to_have_count(0)
    assert "/credentials_submitted" not in log.inner_text() and "/inform" not in log.inner_text()

    # And the conversation carries on after the reload, keyboard only, in the same server-side conversation.
    _tab_to(page, "el && el.classList.contains('km-input')")
    page.keyboard.type("thanks!")
    page.keyboard.press("Enter")
    expect(log.locator(".km-msg--user:has-text('thanks!') ~ .km-msg--bot").first).to_be_visible(
        timeout=REPLY_TIMEOUT_MS
    )
    # The bubble after "thanks!" may be the resync report pushed meanwhile; Rasa stores the turn when it
    # ends, so wait for the tracker to hold it rather than reading it once.
    deadline = time.monotonic() + REPLY_TIMEOUT_MS / 1000
    while True:
        tracker = rasa_stack.api("GET", f"/conversations/{session_id_for('demo')}/tracker")
        said = [e["text"] for e in tracker.json()["events"] if e.get("event") == "user"]
        if said[-1] == "thanks!" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert said[0] == "my wallet stopped syncing" and said[-1] == "thanks!"
    _screenshot(page, "widget-after-reload")


def test_a_hand_off_shows_that_a_person_will_reply_and_their_replies(
    page: Page, rasa_stack: RasaStack
) -> None:
    _open_widget(page, rasa_stack)
    log = page.get_by_role("log")
    # A fresh browser (nothing in sessionStorage) knows from the server that the earlier form was used.
    expect(log.get_by_text("Secure key form (no longer usable).")).to_have_count(1, timeout=15_000)
    expect(page.get_by_role("form", name="Your new Kraken API key")).to_have_count(0)
    box = page.get_by_label("Message to KeyMedic")
    box.focus()

    page.keyboard.type("I want to talk to a person")
    page.keyboard.press("Enter")

    handoff = page.locator(".km-handoff")
    expect(handoff).to_have_text(re.compile("A person will reply here"), timeout=REPLY_TIMEOUT_MS)
    expect(page.get_by_label("Message to support")).to_be_visible()
    ticket = re.search(r"ticket #(\d+)", log.inner_text())
    assert ticket, log.inner_text()

    # A secret pasted into the chat anyway (the paused bot stays quiet, so only the warning answers): the
    # user's own bubble shows it redacted.
    pasted = credentials_for("kraken", "wrong_secret")["api_secret"]
    page.keyboard.type(f"here is my kraken secret {pasted}")
    page.keyboard.press("Enter")
    expect(log.get_by_text(re.compile("was not stored"))).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(log.locator(".km-msg--user").last).to_have_text(re.compile(re.escape(f"secret {REDACTED}")))
    assert pasted not in page.content()

    # The agent replies through the agent API; the widget shows it as theirs, live, under the name of the
    # agent whose credential sent it (the local run's operator), not a name the request gives.
    with httpx.Client(
        base_url=f"{rasa_stack.web_url}/agent/tickets",
        headers={"Authorization": f"Bearer {rasa_stack.agent_token}"},
        timeout=15,
    ) as agent:
        sent = agent.post(f"/{ticket.group(1)}/reply", json={"text": "Hi, Sam here."})
        assert sent.is_success, sent.text
        agent_message = log.locator(".km-msg--agent").last
        expect(agent_message).to_contain_text("Hi, Sam here.", timeout=15_000)
        expect(agent_message).to_contain_text("local-operator from support")

        # After a reload the hand-off state and the agent's reply are still there.
        page.reload()
        expect(page.locator(".km-handoff")).to_have_text(
            re.compile("A person will reply here"), timeout=30_000
        )
        expect(page.get_by_role("log").locator(".km-msg--agent").last).to_contain_text("Hi, Sam here.")
        _screenshot(page, "widget-handoff")
        assert agent.post(f"/{ticket.group(1)}/resume", json={}).is_success


def test_a_message_refused_for_an_expired_sign_in_is_sent_again_after_reconnecting(
    page: Page, rasa_stack: RasaStack
) -> None:
    # The first token is already 20 s past its expiry: inside the channel's 30 s leeway when the socket
    # connects, outside it a few seconds later, when the message is sent. Later tokens are the web app's.
    minted = int(time.time())
    claims = {"sub": "demo", "aud": rasa_stack.settings.widget_jwt_audience, "iat": minted - 600}
    stale = jwt.encode({**claims, "exp": minted - 20}, rasa_stack.widget_jwt_secret, algorithm="HS256")
    handed_out: list[str] = []

    def demo_token(route: Route) -> None:
        handed_out.append("stale" if not handed_out else "fresh")
        if handed_out[-1] == "stale":
            route.fulfill(json={"token": stale, "expires_in_s": 0, "user": "demo"})
        else:
            route.continue_()

    page.route("**/widget/demo-token", demo_token)
    _open_widget(page, rasa_stack)
    assert handed_out == ["stale"]
    page.wait_for_timeout(max(0.0, minted + 12 - time.time()) * 1000)

    question = "do I need a passphrase for my kraken key?"
    page.get_by_label("Message to KeyMedic").focus()
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    log = page.get_by_role("log")
    expect(log.locator(f".km-msg--user:has-text('{question}') ~ .km-msg--bot").first).to_be_visible(
        timeout=REPLY_TIMEOUT_MS
    )
    assert handed_out[:2] == ["stale", "fresh"]  # the widget reconnected with a fresh token
    expect(log.locator(".km-msg--user", has_text=question)).to_have_count(1)
    tracker = rasa_stack.api("GET", f"/conversations/{session_id_for('demo')}/tracker")
    said = [e["text"] for e in tracker.json()["events"] if e.get("event") == "user"]
    assert said.count(question) == 1
