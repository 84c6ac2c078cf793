"""The agent API in the real web app over HTTP, on SQLite and PostgreSQL, with a stand-in for Rasa's HTTP API
(the real Rasa path is tested end to end by the integrator)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from bot import csat
from bot.config import Settings
from bot.handoff.services import removal_approved
from bot.handoff.transcript import Redaction
from bot.store import agents
from bot.web.app import build_app
from tests.support.web import serve_web_app

from .conftest import FakeRasa, Tickets

pytestmark = pytest.mark.integration

# KEYMEDIC_AGENT_TOKEN of these tests: the credential of the environment's automation agent.
TOKEN = "agent-token-for-tests-0123456789"
SAM = "sam@support.example"


def placeholder_redact(text: str) -> Redaction:
    """Stands in for `bot.redaction` in these tests: anything after "secret " is a secret."""
    head, marker, _ = text.partition("secret ")
    return Redaction(head + marker + "[redacted]", ("api_secret",)) if marker else Redaction(text, ())


@dataclass
class AgentApi:
    url: str
    tickets: Tickets
    rasa: FakeRasa
    tokens: dict[str, str]  # each agent's own credential, by email

    @property
    def auth(self) -> dict[str, str]:
        """Sam's credential: what most tests act as."""
        return bearer(self.tokens[SAM])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def agent_api(
    settings: Settings,
    uow_factory: Any,
    tickets: Tickets,
    fake_rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AgentApi]:
    import bot.web.agent

    monkeypatch.setattr(bot.web.agent, "load_redactor", lambda: placeholder_redact)
    tokens = {
        email: agents.add_agent(uow_factory(), email=email, name=name)[1]
        for email, name in ((SAM, "Sam"), ("kim@support.example", "Kim"))
    }
    app = build_app(
        replace(settings, agent_token=TOKEN, rasa_url=fake_rasa.url, rasa_token="rasa-secret"),
        uow_factory=uow_factory,
    )
    with serve_web_app(app) as url:
        yield AgentApi(url, tickets, fake_rasa, tokens)


async def test_every_agent_route_needs_the_bearer_token(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    routes = [("GET", "")] + [("POST", f"/{a}") for a in ("reply", "resume", "approve-removal", "close")]
    sam = agent_api.tokens[SAM]
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {sam}"},
        {"Authorization": f"Bearer {sam}x"},
        {"Authorization": f"Bearer {sam[:-1]}"},
        {"Authorization": sam},
    ]
    with agent_api.client() as client:
        for method, suffix in routes:
            for headers in wrong:
                response = client.request(
                    method, f"/agent/tickets/{ticket_id}{suffix}", headers=headers, json={"agent": "sam"}
                )
                assert response.status_code == 401, (method, suffix, headers)
                assert response.json()["error"]["code"] == "unauthorized"
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert agent_api.rasa.requests == []  # nothing reached the conversation
    assert not removal_approved(agent_api.tickets.uow_factory(), "conv-1")


async def test_a_disabled_agent_and_a_replaced_credential_stop_working_at_once(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    uow_factory = agent_api.tickets.uow_factory
    kim_old = agent_api.tokens["kim@support.example"]
    with agent_api.client() as client:
        assert client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth).status_code == 200
        kim_new = agents.issue_credential(uow_factory(), "kim@support.example")
        assert client.get(f"/agent/tickets/{ticket_id}", headers=bearer(kim_old)).status_code == 401
        assert client.get(f"/agent/tickets/{ticket_id}", headers=bearer(kim_new)).status_code == 200
        assert agents.disable_agent(uow_factory(), SAM)
        disabled = client.post(f"/agent/tickets/{ticket_id}/approve-removal", headers=agent_api.auth)
    assert disabled.status_code == 401 and disabled.json()["error"]["code"] == "unauthorized"
    assert not removal_approved(uow_factory(), "conv-1")
    with pytest.raises(agents.AgentNotFound):
        agents.issue_credential(uow_factory(), SAM)  # enabling an agent again is not a side effect


async def test_what_an_agent_does_is_recorded_under_its_credential_not_the_name_it_gives(
    agent_api: AgentApi,
) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    kim = bearer(agent_api.tokens["kim@support.example"])
    with agent_api.client() as client:
        client.post(f"/agent/tickets/{ticket_id}/reply", headers=kim, json={"agent": "sam", "text": "Hi"})
        approved = client.post(
            f"/agent/tickets/{ticket_id}/approve-removal", headers=kim, json={"agent": SAM}
        )
        view = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth).json()["ticket"]
    assert approved.json()["removal_approval"]["by"] == "kim@support.example"
    assert [(h["action"], h["by"]) for h in view["history"]] == [
        ("reply", "kim@support.example"),
        ("approve_removal", "kim@support.example"),
    ]
    assert agent_api.rasa.requests[0]["json"][0]["metadata"] == {"keymedic_agent": "Kim"}


async def test_the_agent_reads_the_ticket_with_the_redacted_transcript_refreshed_from_rasa(
    agent_api: AgentApi,
) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    agent_api.rasa.events = [
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        {"event": "user", "text": "my key is broken", "timestamp": 2.0},
        {"event": "bot", "text": "I've passed this to our support team", "timestamp": 3.0},
        {"event": "pause", "timestamp": 3.5},
        {"event": "user", "text": "here is my secret abcdEFGH12345678", "timestamp": 4.0},
    ]
    with agent_api.client() as client:
        response = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth)
        again = client.get(
            f"/agent/tickets/{ticket_id}", headers=agent_api.auth
        )  # refreshing twice adds nothing
    assert response.status_code == 200
    body = response.json()
    assert body["transcript_refreshed"] is True
    ticket = body["ticket"]
    assert [(t["role"], t["text"]) for t in ticket["transcript"]] == [
        ("user", "my key is broken"),
        ("bot", "I've passed this to our support team"),
        ("user", "here is my secret [redacted]"),
    ]
    assert "abcdEFGH12345678" not in response.text
    assert ticket["transcript"][-1]["redacted"] == ["api_secret"]
    assert ticket["diagnosis"]["items"][2]["raw_code"] == "EGeneral:Permission denied"
    assert ticket["checklist"] == {"checklist_activated": True}
    assert ticket["edits_at_stake"]["total"] == 0
    assert ticket["user"]["handle"] == "alice" and ticket["wallet"]["exchange"] == "kraken"
    assert ticket["bot_paused"] is True and ticket["status"] == "open"
    assert ticket["removal_approval"] == {"approved": False, "by": None, "at": None}
    assert ticket["notifications"][0]["status"] == "pending"
    assert again.json()["ticket"]["transcript"] == ticket["transcript"]
    tracker_request = agent_api.rasa.requests[0]
    assert tracker_request["path"] == "/conversations/conv-1/tracker"
    assert tracker_request["query"] == {"include_events": "ALL", "token": "rasa-secret"}


async def test_the_ticket_is_served_from_the_store_when_rasa_is_down(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    agent_api.rasa.status = 503
    with agent_api.client() as client:
        response = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth)
        missing = client.get("/agent/tickets/999999", headers=agent_api.auth)
        nonsense = client.get("/agent/tickets/abc", headers=agent_api.auth)
    assert response.status_code == 200 and response.json()["transcript_refreshed"] is False
    assert missing.status_code == 404 and nonsense.status_code == 404


async def test_a_reply_is_appended_as_a_bot_event_sent_through_the_latest_channel(
    agent_api: AgentApi,
) -> None:
    ticket_id = await agent_api.tickets.open("slack-T1-C2-1700000000.000100")
    with agent_api.client() as client:
        response = client.post(
            f"/agent/tickets/{ticket_id}/reply",
            headers=agent_api.auth,
            json={"agent": "sam", "text": "Hi, Sam here."},
        )
    assert response.status_code == 200 and response.json()["status"] == "sent"
    [request] = agent_api.rasa.requests
    # As Rasa's router matches it: unescaped (it never percent-decodes a path).
    assert request["path"] == "/conversations/slack-T1-C2-1700000000.000100/tracker/events"
    assert request["query"] == {
        "output_channel": "latest",
        "execute_side_effects": "true",
        "include_events": "NONE",
        "token": "rasa-secret",
    }
    assert request["json"] == [
        {"event": "bot", "text": "Hi, Sam here.", "metadata": {"keymedic_agent": "Sam"}}
    ]


async def test_a_reply_to_a_conversation_rasa_cannot_address_is_refused_and_not_sent(
    agent_api: AgentApi,
) -> None:
    ticket_id = await agent_api.tickets.open("a sender id with spaces")
    with agent_api.client() as client:
        response = client.post(
            f"/agent/tickets/{ticket_id}/reply",
            headers=agent_api.auth,
            json={"agent": "sam", "text": "Hi, Sam here."},
        )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conversation_unreachable"
    assert agent_api.rasa.requests == []


async def test_replies_are_validated_and_refused_on_a_closed_ticket(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    url = f"/agent/tickets/{ticket_id}"
    with agent_api.client() as client:
        assert client.post(f"{url}/reply", headers=agent_api.auth, json={"agent": "sam"}).status_code == 400
        assert client.post(f"{url}/reply", headers=agent_api.auth, json={"text": "  "}).status_code == 400
        assert client.post(f"{url}/reply", headers=agent_api.auth, content=b"not json").status_code == 400
        closed = client.post(f"{url}/close", headers=agent_api.auth, json={"agent": "sam", "resume": False})
        assert closed.status_code == 200 and closed.json()["resumed"] is False
        late = client.post(f"{url}/reply", headers=agent_api.auth, json={"agent": "sam", "text": "hi"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "ticket_closed"
    assert agent_api.rasa.requests == []


async def test_resume_appends_a_resume_event_and_notes_it(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    with agent_api.client() as client:
        response = client.post(
            f"/agent/tickets/{ticket_id}/resume", headers=agent_api.auth, json={"agent": "sam"}
        )
        agent_api.rasa.status = 503
        view = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth).json()["ticket"]
    assert response.status_code == 200
    [request, _] = agent_api.rasa.requests
    assert request["json"] == [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
    assert request["query"] == {"include_events": "NONE", "token": "rasa-secret"}
    assert view["bot_paused"] is False
    assert [(h["action"], h["by"]) for h in view["history"]] == [("resume", SAM)]


async def test_rasa_failing_is_a_502_and_nothing_is_recorded(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    agent_api.rasa.status = 500
    with agent_api.client() as client:
        response = client.post(
            f"/agent/tickets/{ticket_id}/reply",
            headers=agent_api.auth,
            json={"agent": "sam", "text": "hello"},
        )
        closing = client.post(
            f"/agent/tickets/{ticket_id}/close", headers=agent_api.auth, json={"agent": "sam"}
        )
        agent_api.rasa.status = 200
        view = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth).json()["ticket"]
    assert response.status_code == 502 and response.json()["error"]["code"] == "rasa_unavailable"
    assert closing.status_code == 502  # not closed on a conversation that would stay paused
    assert view["status"] == "open" and view["history"] == []


async def test_only_the_agent_api_approves_removal_and_it_records_who_and_when(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    uow_factory = agent_api.tickets.uow_factory
    assert not removal_approved(uow_factory(), "conv-1")
    with agent_api.client() as client:
        refused = client.post(f"/agent/tickets/{ticket_id}/approve-removal", json={"agent": "sam"})
        assert refused.status_code == 401 and not removal_approved(uow_factory(), "conv-1")
        first = client.post(
            f"/agent/tickets/{ticket_id}/approve-removal", headers=agent_api.auth, json={"agent": "sam"}
        )
        second = client.post(
            f"/agent/tickets/{ticket_id}/approve-removal",
            headers=bearer(agent_api.tokens["kim@support.example"]),
        )
        view = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth).json()["ticket"]
    assert first.status_code == 200 and first.json()["removal_approval"]["by"] == SAM
    assert second.json()["removal_approval"] == first.json()["removal_approval"]  # the first approval stands
    assert removal_approved(uow_factory(), "conv-1")
    assert not removal_approved(uow_factory(), "another-conversation")
    assert view["removal_approval"]["approved"] is True and view["removal_approval"]["by"] == SAM
    uow = uow_factory()
    with uow:
        ticket = uow.tickets.get(ticket_id)
        assert ticket is not None and ticket.removal_approved_by == SAM
        assert ticket.removal_approved_at is not None


async def test_closing_resumes_the_bot_and_a_later_hand_off_reopens_the_ticket(agent_api: AgentApi) -> None:
    ticket_id = await agent_api.tickets.open("conv-1")
    with agent_api.client() as client:
        closed = client.post(
            f"/agent/tickets/{ticket_id}/close", headers=agent_api.auth, json={"agent": "sam"}
        )
        twice = client.post(
            f"/agent/tickets/{ticket_id}/close", headers=agent_api.auth, json={"agent": "sam"}
        )
        reopened_id = await agent_api.tickets.open("conv-1")
        view = client.get(f"/agent/tickets/{ticket_id}", headers=agent_api.auth).json()["ticket"]
    assert closed.json() == {
        "status": "closed",
        "ticket_id": ticket_id,
        "already_closed": False,
        "resumed": True,
    }
    assert twice.json()["already_closed"] is True
    resume = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
    # The first close also asks the user to rate the help (CSAT, issue 16); the second changes nothing.
    assert [r["json"] for r in agent_api.rasa.requests if r["method"] == "POST"] == [
        resume,
        [{"event": "bot", "text": csat.QUESTION, "data": {"buttons": csat.rating_buttons()}}],
        resume,
    ]
    assert reopened_id == ticket_id
    assert view["status"] == "open" and len(view["notifications"]) == 2
    assert [h["action"] for h in view["history"]] == ["resume", "close", "resume", "reopened"]


async def test_the_environment_token_is_one_automation_agent_revoked_once_the_variable_is_gone(
    settings: Settings, uow_factory: Any, tickets: Tickets
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    ticket_id = await tickets.open("conv-1")

    async def status_with(agent_token: str) -> int:
        app = build_app(replace(settings, agent_token=agent_token), uow_factory=uow_factory)
        async with TestClient(TestServer(app)) as client:
            response = await client.get(f"/agent/tickets/{ticket_id}", headers=bearer(TOKEN))
            return response.status

    assert await status_with(TOKEN) == 200
    [automation] = agents.list_agents(uow_factory())
    assert (automation.email, automation.kind) == (agents.ENV_AUTOMATION_EMAIL, agents.AUTOMATION)
    assert await status_with("") == 401  # the secret was removed from the environment: it stops working
    assert await status_with("another-agent-token-for-tests-0123456789") == 401  # replaced: the old one too
    with pytest.raises(ValueError, match="at least 32 bytes"):
        build_app(replace(settings, agent_token="short-token"), uow_factory=uow_factory)
