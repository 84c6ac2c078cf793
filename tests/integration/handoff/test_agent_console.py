"""The agent console (issue 16) in the real web app over HTTP, on SQLite and PostgreSQL, with a stand-in for
Rasa's HTTP API: sign-in and its locks, the queue, the ticket and the actions, two agents at once.

Cookies are carried by hand: the console's cookies are `Secure` (the public URL is https), so an HTTP client
would rightly refuse to send them to the plain-http test server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from bot import csat
from bot.config import Settings
from bot.handoff.services import removal_approved, ticket_view
from bot.store import agent_signin, agents
from bot.web.app import build_app
from tests.support.clock import FakeWallClock
from tests.support.web import serve_web_app

from .conftest import FakeRasa, Tickets
from .test_agent_api import placeholder_redact

pytestmark = pytest.mark.integration

SAM, KIM = "sam@support.example", "kim@support.example"
PASSWORD = "correct horse battery staple"


@dataclass
class Console:
    url: str
    tickets: Tickets
    rasa: FakeRasa
    clock: FakeWallClock
    uow_factory: Any

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, follow_redirects=False)


def cookies_set(response: httpx.Response) -> dict[str, str]:
    """Each cookie the response sets: name -> its whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1].strip('"')


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field"
    return found.group(1)


class Agent:
    """A browser of one agent: keeps its cookies by hand, posts forms with their CSRF token."""

    def __init__(self, console: Console, client: httpx.Client) -> None:
        self.console, self.client = console, client
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for name, line in cookies_set(response).items():
            if "Max-Age=0" in line or "expires=Thu, 01 Jan 1970" in line:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value(line)
        return response

    def _cookie(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {**(headers or {}), **({"Cookie": cookie} if cookie else {})}

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._keep(self.client.get(path, headers=self._cookie(headers)))

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._keep(self.client.post(path, data=data, headers=self._cookie()))

    def set_password(self, token: str, password: str = PASSWORD) -> httpx.Response:
        form = self.get("/agent/set-password")
        return self.post(
            "/agent/set-password",
            {"csrf": hidden(form.text, "csrf"), "token": token, "password": password},
        )

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        form = self.get("/agent/sign-in")
        response = self.post(
            "/agent/sign-in", {"csrf": hidden(form.text, "csrf"), "email": email, "password": password}
        )
        if response.status_code == 303:
            self.csrf = hidden(self.get("/agent").text, "csrf")
        return response

    def act(self, ticket_id: int, action: str, **fields: str) -> httpx.Response:
        return self.post(f"/agent/ticket/{ticket_id}/{action}", {"csrf": self.csrf, **fields})


@pytest.fixture
def console(
    settings: Settings,
    uow_factory: Any,
    tickets: Tickets,
    fake_rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Console]:
    import bot.web.agent

    monkeypatch.setattr(bot.web.agent, "load_redactor", lambda: placeholder_redact)
    # Fast scrypt for the tests' many sign-ins; the parameters are stored with each hash.
    monkeypatch.setattr(agent_signin, "_N", 2**10)
    for email, name in ((SAM, "Sam"), (KIM, "Kim")):
        agents.add_agent(uow_factory(), email=email, name=name)
    clock = FakeWallClock(datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc))
    app = build_app(replace(settings, rasa_url=fake_rasa.url), uow_factory=uow_factory, clock=clock)
    with serve_web_app(app) as url:
        yield Console(url, tickets, fake_rasa, clock, uow_factory)


def signed_in(console: Console, client: httpx.Client, email: str) -> Agent:
    agent = Agent(console, client)
    link = agent_signin.issue_password_link(console.uow_factory(), email, now=console.clock())
    assert agent.set_password(link).status_code == 200
    assert agent.sign_in(email).status_code == 303
    return agent


# -- sign-in -------------------------------------------------------------------------------------------------


async def test_a_set_password_link_works_once_and_the_session_cookie_is_locked_down(console: Console) -> None:
    link = agent_signin.issue_password_link(console.uow_factory(), SAM, now=console.clock())
    with console.client() as client:
        sam = Agent(console, client)
        assert sam.set_password(link).status_code == 200
        reused = sam.set_password(link, "another password entirely")
        assert reused.status_code == 410 and "used or expired" in reused.text
        assert sam.sign_in(SAM, "another password entirely").status_code == 401  # the reuse changed nothing
        form = sam.get("/agent/sign-in")
        answer = sam.post(
            "/agent/sign-in", {"csrf": hidden(form.text, "csrf"), "email": SAM, "password": PASSWORD}
        )
    assert answer.status_code == 303 and answer.headers["location"] == "/agent"
    session = cookies_set(answer)["km_agent"]
    flags = [part.strip().lower() for part in session.split(";")]
    assert "httponly" in flags and "secure" in flags and "samesite=strict" in flags and "path=/agent" in flags
    assert PASSWORD not in answer.text


async def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(console: Console) -> None:
    with console.client() as client:
        signed_in(console, client, SAM)
        other = Agent(console, client)
        wrong = other.sign_in(SAM, "not the password at all")
        unknown = other.sign_in("nobody@support.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "km_agent" not in cookies_set(wrong) and "km_agent" not in cookies_set(unknown)
    message = "That email and password did not work"
    assert message in wrong.text and message in unknown.text


async def test_forms_without_the_csrf_token_do_nothing(console: Console, tickets: Tickets) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        no_token = sam.post("/agent/sign-in", {"email": SAM, "password": PASSWORD})
        forged = sam.post(f"/agent/ticket/{ticket_id}/reply", {"text": "hello", "csrf": "forged"})
        missing = sam.post(f"/agent/ticket/{ticket_id}/approve-removal", {})
        closing = sam.post(f"/agent/ticket/{ticket_id}/close", {"csrf": ""})
    assert [r.status_code for r in (no_token, forged, missing, closing)] == [403] * 4
    assert console.rasa.requests == []
    assert not removal_approved(console.uow_factory(), "conv-1")
    assert ticket_view(console.uow_factory(), ticket_id)["status"] == "open"


async def test_a_disabled_agent_is_signed_out_and_refused(console: Console, tickets: Tickets) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        assert sam.get("/agent").status_code == 200
        assert agents.disable_agent(console.uow_factory(), SAM)
        page = sam.get("/agent")
        feed = sam.get("/agent/queue.json")
        reply = sam.act(ticket_id, "reply", text="still here?")
        again = Agent(console, client).sign_in(SAM)
    assert page.status_code == 303 and page.headers["location"] == "/agent/sign-in"
    assert feed.status_code == 401
    assert reply.status_code == 303 and reply.headers["location"] == "/agent/sign-in"
    assert again.status_code == 401
    assert console.rasa.requests == []
    with pytest.raises(agents.InvalidAgent):
        agent_signin.issue_password_link(console.uow_factory(), SAM)  # no new link for a disabled agent


async def test_the_lockout_holds_even_for_the_right_password_until_it_ends(console: Console) -> None:
    with console.client() as client:
        signed_in(console, client, SAM)
        guesser = Agent(console, client)
        for attempt in range(agent_signin.MAX_FAILED_SIGNINS):
            assert guesser.sign_in(SAM, f"guess number {attempt}").status_code == 401
        assert guesser.sign_in(SAM).status_code == 401  # locked: the right password does not help
        console.clock.now += agent_signin.LOCKOUT - timedelta(seconds=1)
        assert guesser.sign_in(SAM).status_code == 401
        console.clock.now += timedelta(seconds=2)
        assert guesser.sign_in(SAM).status_code == 303


async def test_guesses_sent_in_parallel_all_count_towards_the_lockout(console: Console) -> None:
    with console.client() as client:
        signed_in(console, client, SAM)
    barrier = threading.Barrier(agent_signin.MAX_FAILED_SIGNINS)

    def guess(number: int) -> None:
        barrier.wait()
        with pytest.raises(agent_signin.SignInRefused):
            agent_signin.sign_in(console.uow_factory(), SAM, f"parallel guess {number}", now=console.clock())

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(agent_signin.MAX_FAILED_SIGNINS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with pytest.raises(agent_signin.SignInRefused):
        agent_signin.sign_in(console.uow_factory(), SAM, PASSWORD, now=console.clock())  # locked


async def test_signing_out_ends_the_session(console: Console) -> None:
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        session = sam.cookies["km_agent"]
        assert sam.post("/agent/sign-out", {"csrf": sam.csrf}).status_code == 303
        replayed = client.get("/agent/queue.json", headers={"Cookie": f"km_agent={session}"})
    assert replayed.status_code == 401


# -- the queue, the ticket, the actions ----------------------------------------------------------------------


async def test_the_queue_lists_open_tickets_longest_waiting_first_and_changes_its_etag(
    console: Console, tickets: Tickets
) -> None:
    first = await tickets.open("conv-1")
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        one = sam.get("/agent/queue.json")
        same = sam.get("/agent/queue.json", headers={"If-None-Match": one.headers["ETag"]})
        second = await tickets.open("conv-2", reason="asked for a person")
        two = sam.get("/agent/queue.json", headers={"If-None-Match": one.headers["ETag"]})
        page = sam.get("/agent")
    assert [t["id"] for t in one.json()["tickets"]] == [first]
    assert same.status_code == 304
    assert two.status_code == 200 and [t["id"] for t in two.json()["tickets"]] == [first, second]
    entry = two.json()["tickets"][1]
    assert entry["user"] == "Alice Example" and entry["exchange"] == "kraken" and entry["bot_paused"] is True
    assert entry["reason"] == "asked for a person"
    assert f'href="/agent/ticket/{second}"' in page.text and 'aria-live="polite"' in page.text


async def test_the_ticket_page_shows_the_diagnosis_checklist_and_edits(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    console.rasa.events = [{"event": "user", "text": "my secret abc123 fails", "timestamp": 1.0}]
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        page = sam.get(f"/agent/ticket/{ticket_id}")
        feed = sam.get(f"/agent/ticket/{ticket_id}.json")
    assert page.status_code == 200
    assert "EGeneral:Permission denied" in page.text and "no_ip_restriction" in page.text
    assert "checklist_activated" in page.text and "no manual edits" in page.text
    assert "abc123" not in page.text and "[redacted]" in page.text  # the transcript is redacted
    assert '<label for="reply-text">' in page.text
    assert feed.json()["ticket"]["transcript"][0]["text"] == "my secret [redacted]"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


async def test_a_reply_reaches_the_conversation_under_the_signed_in_agent(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as client:
        kim = signed_in(console, client, KIM)
        answer = kim.act(ticket_id, "reply", text="Hi, Kim here. Let's fix your key.", agent="Sam")
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=replied")
    sent = console.rasa.requests[-1]
    assert sent["path"] == "/conversations/conv-1/tracker/events"
    assert sent["json"][0]["text"] == "Hi, Kim here. Let's fix your key."
    assert sent["json"][0]["metadata"] == {"keymedic_agent": "Kim"}
    history = ticket_view(console.uow_factory(), ticket_id)["history"]
    assert history[-1]["action"] == "reply" and history[-1]["by"] == KIM


async def test_approving_removal_confirms_the_edits_at_stake_and_names_the_agent(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    # The edits the ticket recorded as at stake when it opened (`SupportDesk` counts them from the wallet).
    with (uow := console.uow_factory()):
        ticket = uow.tickets.lock(ticket_id)
        assert ticket is not None
        impact = {"category_changes": 3, "notes": 1, "cost_basis_changes": 0, "manual_transactions": 2}
        ticket.payload = {**ticket.payload, "removal_impact": {**impact, "total": 6}}
        uow.commit()
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        confirm = sam.get(f"/agent/ticket/{ticket_id}/approve-removal")
        assert not removal_approved(console.uow_factory(), "conv-1")  # looking is not approving
        approved = sam.act(ticket_id, "approve-removal")
    edits = "3 category changes, 1 note, 2 manually added transactions"
    assert f"Removing it loses the user's manual edits: <strong>{edits}</strong>" in confirm.text
    assert f"Approve removal (loses {edits})" in confirm.text
    assert approved.status_code == 303
    view = ticket_view(console.uow_factory(), ticket_id)
    assert view["removal_approval"]["by"] == SAM


async def test_when_another_agent_closed_the_ticket_the_action_is_refused_and_says_who(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        kim = signed_in(console, client, KIM)
        assert sam.act(ticket_id, "close").status_code == 303
        sent_before = len(console.rasa.requests)
        reply = kim.act(ticket_id, "reply", text="are you there?")
        resume = kim.act(ticket_id, "resume")
        close = kim.act(ticket_id, "close")
    for refused in (reply, resume, close):
        assert refused.status_code == 409
        assert f"was closed by {SAM}" in refused.text and 'role="alert"' in refused.text
    assert len(console.rasa.requests) == sent_before  # nothing reached the user


async def test_two_agents_closing_at_once_one_wins_the_other_is_told(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as one, console.client() as two:
        sam, kim = signed_in(console, one, SAM), signed_in(console, two, KIM)
        barrier = threading.Barrier(2)
        answers: dict[str, httpx.Response] = {}

        def close(name: str, agent: Agent) -> None:
            barrier.wait()
            answers[name] = agent.act(ticket_id, "close")

        threads = [threading.Thread(target=close, args=a) for a in (("sam", sam), ("kim", kim))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(a.status_code for a in answers.values()) == [303, 409]
    loser = next(a for a in answers.values() if a.status_code == 409)
    winner = next(name for name, a in answers.items() if a.status_code == 303)
    assert f"was closed by {winner}@support.example" in loser.text
    closes = [h for h in ticket_view(console.uow_factory(), ticket_id)["history"] if h["action"] == "close"]
    assert len(closes) == 1


async def test_two_agents_approving_at_once_one_approval_is_recorded(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as client:
        sam, kim = signed_in(console, client, SAM), signed_in(console, client, KIM)
        first = sam.act(ticket_id, "approve-removal")
        second = kim.act(ticket_id, "approve-removal")
    assert first.status_code == 303
    assert second.status_code == 409 and f"already approved by {SAM}" in second.text
    assert ticket_view(console.uow_factory(), ticket_id)["removal_approval"]["by"] == SAM


# -- CSAT ----------------------------------------------------------------------------------------------------


async def test_closing_a_ticket_asks_the_user_to_rate_the_help_once(
    console: Console, tickets: Tickets
) -> None:
    ticket_id = await tickets.open("conv-1")
    with console.client() as client:
        sam = signed_in(console, client, SAM)
        assert sam.act(ticket_id, "close").status_code == 303
        assert sam.act(ticket_id, "close").status_code == 409  # closed already: no second question
    posts = [r for r in console.rasa.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/conversations/conv-1/tracker/events"] * 2
    # After the resume: the question goes to a conversation the bot answers again.
    assert posts[0]["json"][0]["event"] == "resume"
    question = {"event": "bot", "text": csat.QUESTION, "data": {"buttons": csat.rating_buttons()}}
    assert posts[1]["json"] == [question]
