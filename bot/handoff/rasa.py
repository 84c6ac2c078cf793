"""Rasa's HTTP API, for the agent API: relay an agent's reply into the conversation, resume the bot, read the
conversation's events.

An agent's reply is a `bot` event appended with

    POST {RASA}/conversations/{id}/tracker/events?output_channel=latest&execute_side_effects=true

(rasa/server.py `append_events`, Rasa 3.6): Rasa appends the `BotUttered` to the tracker under the
conversation's lock — so it is part of the conversation's history, and the transcript — and, because of
`execute_side_effects`, sends it through the output channel of the conversation's latest input channel
(`processor.execute_side_effects` → `output_channel.send_response`), which is how it reaches the user in the
widget or the Slack thread. `trigger_intent` would need an intent and an action to echo free text, and
`execute` is deprecated; appending the event is the one path that both records and delivers the text.

Proactive outreach (`bot.outreach`) uses two more endpoints: the conversation's state (`GET …/tracker` with
`include_events=NONE`: paused, active loop, latest input channel and event time, without the events), and

    POST {RASA}/conversations/{id}/trigger_intent?output_channel=latest

which adds an external user intent with entities and runs the policies, so a rule answers it and the bot's
messages go out through the conversation's latest channel (rasa/server.py `trigger_intent`).

Rasa's `--auth-token` goes in the `token` query parameter (rasa/server.py `requires_auth`).

RasaError (a `HandoffError`)
└── RasaUnavailable    Rasa did not answer, or answered with an error
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from bot.handoff.services import HandoffError
from bot.handoff.transcript import AGENT_METADATA_KEY

__all__ = [
    "RasaError",
    "RasaUnavailable",
    "UnaddressableConversation",
    "RasaConversations",
    "ConversationState",
]

DEFAULT_TIMEOUT_S: Final = 10.0
# Characters a URL path carries unescaped (RFC 3986 pchar, plus "/" since Rasa's route takes a path).
_ADDRESSABLE_ID: Final = re.compile(r"[A-Za-z0-9._~:@!$&'()*+,;=/-]+")


class RasaError(HandoffError):
    pass


class RasaUnavailable(RasaError):
    pass


class UnaddressableConversation(RasaError):
    """The id holds a character only a percent-escape could carry, which Rasa's router never decodes."""


@dataclass(frozen=True)
class ConversationState:
    """What outreach needs to know about a conversation before speaking in it."""

    conversation_id: str
    paused: bool
    active_loop: str | None
    latest_input_channel: str | None
    latest_event_time: float | None

    @property
    def started(self) -> bool:
        """Whether the user ever wrote in it (Rasa answers for any id, with a fresh unsaved tracker)."""
        return self.latest_input_channel is not None


class RasaConversations:
    """A small async client of Rasa's conversation endpoints. The transport is injected in tests."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        # trust_env=False: Rasa is an internal service; a proxy from the environment must not see its token.
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport, trust_env=False)

    def __repr__(self) -> str:
        return f"RasaConversations({self._base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _url(self, conversation_id: str, suffix: str) -> str:
        # Rasa's router (Sanic 21.12) matches the raw path and never percent-decodes it, and its route takes
        # the id as a `:path`: an id goes in as it is, and one that only a percent-escape could carry would
        # reach a different, empty conversation — refuse it instead.
        if not _ADDRESSABLE_ID.fullmatch(conversation_id):
            raise UnaddressableConversation(
                "this conversation id cannot be addressed through Rasa's HTTP API"
            )
        return f"{self._base_url}/conversations/{conversation_id}/{suffix}"

    def _params(self, **extra: str) -> dict[str, str]:
        params = dict(extra)
        if self._token:
            params["token"] = self._token
        return params

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            raise RasaUnavailable(f"Rasa did not answer ({type(error).__name__})") from None
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        return response

    async def append_events(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]], *, deliver: bool
    ) -> None:
        """Append events to the conversation; with `deliver`, send its `bot` events to the user through the
        conversation's latest channel."""
        params = self._params(include_events="NONE")
        if deliver:
            params.update(output_channel="latest", execute_side_effects="true")
        await self._request(
            "POST", self._url(conversation_id, "tracker/events"), params=params, json=list(events)
        )

    async def send_agent_message(self, conversation_id: str, text: str, *, agent: str) -> None:
        """Relay an agent's reply: recorded in the tracker and delivered to the user."""
        event = {"event": "bot", "text": text, "metadata": {AGENT_METADATA_KEY: agent}}
        await self.append_events(conversation_id, [event], deliver=True)

    async def send_bot_message(
        self, conversation_id: str, text: str, *, buttons: Sequence[Mapping[str, str]] = ()
    ) -> None:
        """A message in the bot's own voice, with its buttons, recorded and delivered like an agent's reply
        (the rating question after a ticket closes: no intent and no rule needed, so none enters DIET's
        inputs)."""
        event = {"event": "bot", "text": text, "data": {"buttons": [dict(b) for b in buttons]}}
        await self.append_events(conversation_id, [event], deliver=True)

    async def resume(self, conversation_id: str) -> None:
        """Resume the paused bot (`ConversationResumed`): it answers the user's next message again."""
        # `action_listen` after the resume: while paused, Rasa logged the user's messages without listening
        # after them, so without it the next message would not follow a listen and no rule would match.
        events = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        await self.append_events(conversation_id, events, deliver=False)

    async def events(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's events (all sessions), as Rasa's tracker returns them."""
        response = await self._request(
            "GET", self._url(conversation_id, "tracker"), params=self._params(include_events="ALL")
        )
        try:
            events = response.json().get("events") or []
        except ValueError:
            raise RasaUnavailable("Rasa answered with something that is not a tracker") from None
        return [event for event in events if isinstance(event, dict)]

    async def state(self, conversation_id: str) -> ConversationState:
        """The conversation's state without its events (paused, active loop, latest channel and time)."""
        response = await self._request(
            "GET", self._url(conversation_id, "tracker"), params=self._params(include_events="NONE")
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RasaUnavailable("Rasa answered with something that is not a tracker")
        loop = body.get("active_loop")
        loop_name = loop.get("name") if isinstance(loop, dict) else None
        channel = body.get("latest_input_channel")
        moment = body.get("latest_event_time")
        return ConversationState(
            conversation_id=conversation_id,
            paused=bool(body.get("paused")),
            active_loop=loop_name if isinstance(loop_name, str) and loop_name else None,
            latest_input_channel=channel if isinstance(channel, str) and channel else None,
            latest_event_time=float(moment) if isinstance(moment, (int, float)) else None,
        )

    async def trigger_intent(
        self, conversation_id: str, intent: str, entities: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Trigger an external intent in the conversation; the bot's answer goes out through the
        conversation's latest channel. Returns the messages Rasa collected (REST conversations, which have no
        push channel), else an empty list."""
        response = await self._request(
            "POST",
            self._url(conversation_id, "trigger_intent"),
            params=self._params(output_channel="latest", include_events="NONE"),
            json={"name": intent, "entities": dict(entities)},
        )
        try:
            messages = response.json().get("messages") or []
        except (ValueError, AttributeError):
            return []
        return [message for message in messages if isinstance(message, dict)]
