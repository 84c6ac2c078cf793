"""The agent console in a real browser (Debian's Chromium, driven by Playwright) against the real servers of a
local run, beside the user's widget in another browser context: an agent sets a password through the one-time
link and signs in with the keyboard; while the queue is open the user asks for a person and the ticket
appears; the agent's reply reaches the widget; the agent approves removal (the confirmation names the edits at
stake) and resumes, and only then does the user get the removal steps.

With `KEYMEDIC_MEASURE_RUNS=N` the last test times N hand-offs (to the ticket in the open queue) and N replies
(to the widget showing them) and prints p50/p95.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import time
from collections.abc import Iterator

import pytest
import sqlalchemy
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.handoff import services
from bot.report.data import Filters, build_report
from bot.store import agent_signin, agents
from bot.store.crypto import load_key_ring
from bot.store.db import create_database
from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.web.console.pages import edits_phrase
from tests.e2e.conftest import RasaStack, own_rasa_stack
from tests.e2e.test_widget_browser import CHROMIUM, REPLY_TIMEOUT_MS, _open_widget, _tab_to
from tests.unit.test_no_removal_steps import removal_steps

pytestmark = pytest.mark.e2e

EMAIL, NAME, PASSWORD = "riley@support.example", "Riley", "a console password for riley"


def _uow(stack: RasaStack) -> tuple[SqlAlchemyUnitOfWork, object]:
    database = create_database(stack.settings.database_url)
    return SqlAlchemyUnitOfWork(database, load_key_ring(stack.settings)), database


@pytest.fixture(scope="module")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """A stack of this module's own: these tests hand the demo user's one widget conversation to support and
    walk it through a removal, which the widget's browser tests on the shared stack must not inherit."""
    with own_rasa_stack(tmp_path_factory) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # Debian's Chromium, never a browser Playwright downloads.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def set_password_link(rasa_stack: RasaStack) -> str:
    """`keymedic agent add` for Riley: the link it prints (the token in the fragment)."""
    database = create_database(rasa_stack.settings.database_url)
    try:
        uow = lambda: SqlAlchemyUnitOfWork(database, load_key_ring(rasa_stack.settings))  # noqa: E731
        agents.add_agent(uow(), email=EMAIL, name=NAME)
        token = agent_signin.issue_password_link(uow(), EMAIL)
    finally:
        database.dispose()
    return f"{rasa_stack.web_url}/agent/set-password#token={token}"


@contextlib.contextmanager
def _page(browser: Browser) -> Iterator[Page]:
    """A page in a browser context of its own; script errors and CSP violations fail the test."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    problems: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    try:
        yield page
        assert problems == []
    finally:
        context.close()


@pytest.fixture
def agent_page(browser: Browser) -> Iterator[Page]:
    with _page(browser) as page:
        yield page


@pytest.fixture
def user_page(browser: Browser) -> Iterator[Page]:
    with _page(browser) as page:
        yield page


def _sign_in(page: Page, stack: RasaStack) -> None:
    """Keyboard only: Tab to the labelled fields, type, Enter."""
    page.goto(f"{stack.web_url}/agent")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    _tab_to(page, "el && el.id === 'email'")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Open tickets")).to_be_visible()


def _ticket_view(stack: RasaStack, ticket_id: int) -> dict[str, object]:
    uow, database = _uow(stack)
    try:
        return services.ticket_view(uow, ticket_id)
    finally:
        database.dispose()  # type: ignore[attr-defined]


def _bot_said(user: Page) -> str:
    return "\n".join(user.get_by_role("log").locator(".km-msg--bot").all_inner_texts())


def _hand_off(user: Page, stack: RasaStack) -> int:
    """In the widget: the removal question (so the ticket knows the edits at stake), then a person."""
    box = user.get_by_label("Message to KeyMedic")
    box.focus()
    user.keyboard.type("can I just delete my kraken exchange and add it again?")
    user.keyboard.press("Enter")
    log = user.get_by_role("log")
    expect(log.locator(".km-msg--bot").last).to_contain_text("manual edits", timeout=REPLY_TIMEOUT_MS)
    assert removal_steps(_bot_said(user)) == []
    box.focus()
    user.keyboard.type("I want to talk to a person")
    user.keyboard.press("Enter")
    expect(user.locator(".km-handoff")).to_have_text(re.compile("A person will reply here"), timeout=60_000)
    found = re.search(r"ticket #(\d+)", log.inner_text())
    assert found, log.inner_text()
    return int(found.group(1))


def test_an_agent_works_a_hand_off_from_the_console_while_the_user_waits_in_the_widget(
    agent_page: Page, user_page: Page, rasa_stack: RasaStack, set_password_link: str
) -> None:
    # The one-time link: the page's script moves the fragment's token into the form and off the address.
    agent_page.goto(set_password_link)
    expect(agent_page).to_have_url(re.compile(r"/agent/set-password$"))
    agent_page.get_by_label(re.compile("New password")).fill(PASSWORD)
    agent_page.get_by_role("button", name="Set password").press("Enter")
    expect(agent_page.get_by_role("heading", name="Password set")).to_be_visible()
    _sign_in(agent_page, rasa_stack)
    live = agent_page.get_by_role("status").first
    expect(live).to_have_attribute("aria-live", "polite")

    # While the queue is open, the user asks for a person; the ticket appears without a reload.
    _open_widget(user_page, rasa_stack)
    ticket_id = _hand_off(user_page, rasa_stack)
    row = agent_page.locator(f'#queue-rows tr[data-ticket="{ticket_id}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_contain_text("paused")
    expect(live).to_contain_text(f"New ticket #{ticket_id}")

    # Keyboard: Tab to the ticket's link, Enter; then the reply box, type, Tab to Send, Enter.
    _tab_to(agent_page, f"el && el.getAttribute('href') === '/agent/ticket/{ticket_id}'", limit=60)
    agent_page.keyboard.press("Enter")
    expect(agent_page.get_by_role("heading", name=f"Ticket #{ticket_id}")).to_be_visible()
    expect(agent_page.locator("#transcript")).to_contain_text("talk to a person")
    _tab_to(agent_page, "el && el.id === 'reply-text'", limit=60)
    agent_page.keyboard.type("Hi, Riley from support here.")
    agent_page.keyboard.press("Tab")
    agent_page.keyboard.press("Enter")
    expect(agent_page.get_by_role("status").filter(has_text="Your reply was sent")).to_be_visible()
    user_log = user_page.get_by_role("log")
    agent_message = user_log.locator(".km-msg--agent").last
    expect(agent_message).to_contain_text("Hi, Riley from support here.", timeout=15_000)
    expect(agent_message).to_contain_text("Riley")

    # The user writes while paused: the open ticket shows it live.
    user_page.get_by_label("Message to support").focus()
    user_page.keyboard.type("thanks, I will wait")
    user_page.keyboard.press("Enter")
    expect(agent_page.locator("#transcript")).to_contain_text("thanks, I will wait", timeout=15_000)

    # Approve removal: the confirmation restates the edits at stake.
    view = _ticket_view(rasa_stack, ticket_id)
    edits = edits_phrase(view["edits_at_stake"])  # type: ignore[arg-type]
    assert re.match(r"\d+ ", edits), edits
    agent_page.get_by_role("link", name="Approve removal…").press("Enter")
    expect(agent_page.locator("#confirm-edits")).to_contain_text(edits)
    agent_page.get_by_role("button", name=f"Approve removal (loses {edits})").press("Enter")
    expect(agent_page.get_by_text(f"Removal approved by {EMAIL}")).to_be_visible()
    assert removal_steps(_bot_said(user_page)) == []  # nothing reached the user yet
    agent_page.get_by_role("button", name="Resume the bot").press("Enter")
    expect(agent_page.locator("#bot-state")).to_have_text("answering")

    user_page.get_by_label(re.compile("Message to")).focus()
    user_page.keyboard.type("ok so can I delete kraken and add it again?")
    user_page.keyboard.press("Enter")
    expect(user_log.locator(".km-msg--bot").last).to_contain_text(
        "Support approved", timeout=REPLY_TIMEOUT_MS
    )
    assert removal_steps(user_log.locator(".km-msg--bot").last.inner_text())
    history = [(h["action"], h["by"]) for h in _ticket_view(rasa_stack, ticket_id)["history"]]  # type: ignore[index, union-attr]
    assert (
        ("reply", EMAIL) in history and ("approve_removal", EMAIL) in history and ("resume", EMAIL) in history
    )

    # Closing the ticket asks the user to rate the help (CSAT), with buttons; a typed rating answers as a
    # button does (the running model's NLU step, rasa_plugins/typed_ratings.py), and the report counts it.
    agent_page.get_by_role("button", name="Close the ticket").press("Enter")
    expect(agent_page.get_by_text("The ticket is closed.")).to_be_visible()
    question = user_log.locator(".km-msg--bot").filter(has_text="how well did we help you today")
    expect(question).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    choices = user_log.get_by_role("group", name="Suggested replies").last
    expect(choices.get_by_role("button", name="4", exact=True)).to_be_visible()
    user_page.get_by_label(re.compile("Message to")).focus()
    user_page.keyboard.type("4 stars")
    user_page.keyboard.press("Enter")
    thanks = user_log.locator(".km-msg--bot").last
    expect(thanks).to_contain_text("rating us 4 out of 5", timeout=REPLY_TIMEOUT_MS)
    tracker = sqlalchemy.create_engine(f"sqlite:///{rasa_stack.tracker_db}")
    keymedic = create_database(rasa_stack.settings.database_url)
    try:
        report = build_report(tracker, keymedic.engine, Filters())
    finally:
        tracker.dispose()
        keymedic.dispose()
    assert report.csat_by_path.get("handed off") == [4]


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (n={len(ordered)})"


@pytest.mark.skipif(not os.environ.get("KEYMEDIC_MEASURE_RUNS"), reason="set KEYMEDIC_MEASURE_RUNS=20")
def test_measure_hand_off_to_queue_and_reply_to_widget(
    agent_page: Page,
    browser: Browser,
    rasa_stack: RasaStack,
    set_password_link: str,
) -> None:
    runs = int(os.environ["KEYMEDIC_MEASURE_RUNS"])
    database = create_database(rasa_stack.settings.database_url)
    try:  # the password, whether or not the browser test above used the link already
        uow = lambda: SqlAlchemyUnitOfWork(database, load_key_ring(rasa_stack.settings))  # noqa: E731
        agent_signin.set_password(uow(), agent_signin.issue_password_link(uow(), EMAIL), PASSWORD)
    finally:
        database.dispose()
    _sign_in(agent_page, rasa_stack)
    to_queue: list[float] = []
    to_widget: list[float] = []
    for _ in range(runs):
        agent_page.goto(f"{rasa_stack.web_url}/agent")
        with _page(browser) as user:
            _open_widget(user, rasa_stack)
            user.get_by_label("Message to KeyMedic").focus()
            user.keyboard.type("I want to talk to a person")
            started = time.perf_counter()
            user.keyboard.press("Enter")
            expect(user.locator(".km-handoff")).to_be_visible(timeout=60_000)
            ticket_id = int(re.search(r"ticket #(\d+)", user.get_by_role("log").inner_text()).group(1))  # type: ignore[union-attr]
            expect(agent_page.locator(f'tr[data-ticket="{ticket_id}"]')).to_be_visible(timeout=30_000)
            to_queue.append(time.perf_counter() - started)
            agent_page.goto(f"{rasa_stack.web_url}/agent/ticket/{ticket_id}")
            agent_page.get_by_label("Reply to the user").fill(f"reply {ticket_id}")
            started = time.perf_counter()
            agent_page.get_by_role("button", name="Send reply").click()
            expect(user.locator(".km-msg--agent").last).to_contain_text(f"reply {ticket_id}", timeout=30_000)
            to_widget.append(time.perf_counter() - started)
            agent_page.get_by_role("button", name="Close the ticket").click()
    print(f"\nhand-off -> ticket in the open queue: {_percentiles(to_queue)}")
    print(f"agent reply -> widget shows it: {_percentiles(to_widget)}")
