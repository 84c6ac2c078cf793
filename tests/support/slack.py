"""Slack as the tests (and a local try-out without a workspace) see it: a stand-in for Slack's Web API, and
requests signed and shaped as Slack sends them (docs/slack.md "Testing").

`FakeSlackApi` is a real HTTP server on 127.0.0.1 that answers the Web API methods the channel calls
(`chat.postMessage`, `chat.postEphemeral`, `chat.update`) as Slack does and records each call; point
`KEYMEDIC_SLACK_API_URL` at `api_url`. It is the one external service KeyMedic's tests stand in for. Its
base, `LoopbackServer`, serves the tests' other in-process stand-ins too (the channels' recording proxy).

The builders follow Slack's documentation: the Events API's `event_callback` envelope (`team_id`,
`event_id`, `authorizations`, the `message` / `app_mention` event) sent as JSON, and interactivity's
`block_actions` payload sent as `application/x-www-form-urlencoded` with one `payload` field.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

from channels.slack_signature import sign

__all__ = [
    "LoopbackServer",
    "FakeSlackApi",
    "SlackCall",
    "signed_headers",
    "event_body",
    "message_event",
    "block_actions_form",
    "BOT_USER",
]

BOT_USER = "UKEYMEDIC"

_Server = TypeVar("_Server", bound="LoopbackServer")


class LoopbackServer(ABC):
    """An HTTP server on a free port of 127.0.0.1, serving from a daemon thread while the `with` block runs;
    it answers each POST with what `answer` returns, as `content_type`."""

    content_type = "application/json"

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, content = owner.answer(self.path, self.headers, body)
                # The client may hang up first when the servers stop at the end of a run.
                with contextlib.suppress(ConnectionError):
                    self.send_response(status)
                    self.send_header("Content-Type", owner.content_type)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @abstractmethod
    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to a POST of `body` to `path`."""

    def __enter__(self: _Server) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class SlackCall:
    """One Web API call the bot made: the method, its arguments, and the bearer token it sent."""

    method: str
    arguments: dict[str, Any]
    token: str


class FakeSlackApi(LoopbackServer):
    """Answers Slack Web API calls on 127.0.0.1 and remembers them."""

    content_type = "application/json; charset=utf-8"

    def __init__(self) -> None:
        self.calls: list[SlackCall] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        super().__init__()

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, bytes]:
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        if media_type == "application/json":
            arguments = json.loads(body or b"{}")
        else:
            arguments = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            for key in ("blocks", "attachments"):
                if isinstance(arguments.get(key), str):
                    arguments[key] = json.loads(arguments[key])
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        method = path.rsplit("/", 1)[-1]
        return 200, json.dumps(self._record(method, arguments, token)).encode()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def _record(self, method: str, arguments: dict[str, Any], token: str) -> dict[str, Any]:
        with self._lock:
            self.calls.append(SlackCall(method, arguments, token))
            ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method in ("chat.postMessage", "chat.update"):
            return {"ok": True, "channel": arguments.get("channel"), "ts": arguments.get("ts") or ts}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        return {"ok": False, "error": "unknown_method"}

    def calls_to(self, method: str, *, thread_ts: str | None = None) -> list[SlackCall]:
        """The calls of one method so far (in one thread, when `thread_ts` is given)."""
        with self._lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if c.method == method and (thread_ts is None or c.arguments.get("thread_ts") == thread_ts)
        ]

    def wait_for(
        self, method: str, *, thread_ts: str | None = None, count: int = 1, timeout: float = 60.0
    ) -> list[SlackCall]:
        """Wait until at least `count` such calls arrived; then the calls. Raises `TimeoutError`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.calls_to(method, thread_ts=thread_ts)
            if len(calls) >= count:
                return calls
            time.sleep(0.1)
        raise TimeoutError(
            f"{method}: {len(self.calls_to(method, thread_ts=thread_ts))} calls, wanted {count}"
        )


def signed_headers(
    secret: str, body: bytes, *, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with `body`: its content type, the request timestamp and the v0 signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
    }


def message_event(
    *,
    user: str,
    text: str,
    channel: str,
    ts: str,
    thread_ts: str | None = None,
    channel_type: str = "im",
    kind: str = "message",
) -> dict[str, Any]:
    """A `message` (or `app_mention`) event as the Events API describes it."""
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def event_body(team: str, event: dict[str, Any], *, event_id: str) -> bytes:
    """The `event_callback` envelope Slack posts to the Request URL, as JSON bytes."""
    envelope = {
        "token": "verification-token-unused",
        "team_id": team,
        "api_app_id": "AKEYMEDIC",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True}],
    }
    return json.dumps(envelope).encode()


def block_actions_form(
    *,
    team: str,
    user: str,
    channel: str,
    message: dict[str, Any],
    action: dict[str, Any],
) -> bytes:
    """A `block_actions` interaction (a button click) as Slack posts it to the Interactivity URL: the JSON
    payload in the `payload` field of a URL-encoded form."""
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "keymedic-test"},
        "user": {"id": user, "username": "someone", "team_id": team},
        "api_app_id": "AKEYMEDIC",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
            **({"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {}),
        },
        "trigger_id": "1.2.3",
        "channel": {"id": channel, "name": "directmessage"},
        "message": message,
        "response_url": "https://hooks.slack.com/actions/T/1/x",
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


# -- a running KeyMedic with Slack on, for the integration and end-to-end tests ---------------------------


@dataclass
class SlackStack:
    """KeyMedic's processes with the Slack channel on, answering into a `FakeSlackApi`."""

    rasa_url: str
    web_url: str
    signing_secret: str
    fake: FakeSlackApi
    database_url: str
    var_dir: Any
    env: dict[str, str]
    team: str = "T0KEYMEDIC"

    @property
    def webhook(self) -> str:
        return f"{self.rasa_url}/webhooks/slack/webhook"

    def post(self, body: bytes, headers: dict[str, str]) -> Any:
        import httpx

        return httpx.post(self.webhook, content=body, headers=headers, timeout=30, trust_env=False)

    def send(
        self,
        event: dict[str, Any],
        *,
        event_id: str,
        retry: int | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Any:
        """Post an event as Slack does, signed with `secret` (the app's by default) at `timestamp` (now)."""
        body = event_body(self.team, event, event_id=event_id)
        headers = signed_headers(
            secret or self.signing_secret, body, content_type="application/json", timestamp=timestamp
        )
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return self.post(body, headers)

    def click(self, *, user: str, channel: str, message: dict[str, Any], action: dict[str, Any]) -> Any:
        """A signed `block_actions` post, as when `user` clicks `action` on `message`."""
        body = block_actions_form(team=self.team, user=user, channel=channel, message=message, action=action)
        headers = signed_headers(self.signing_secret, body, content_type="application/x-www-form-urlencoded")
        return self.post(body, headers)

    def tracker_events(self, conversation: str) -> list[dict[str, Any]]:
        """The conversation's events, from Rasa's HTTP API."""
        from urllib.parse import quote

        import httpx

        response = httpx.get(
            f"{self.rasa_url}/conversations/{quote(conversation, safe='')}/tracker",
            params={"token": self.env["KEYMEDIC_RASA_TOKEN"]},  # Rasa's HTTP API takes its token
            timeout=30,
            trust_env=False,
        )
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json().get("events") or []
        return events

    def user_texts(self, conversation: str) -> list[str]:
        """What the user said in the conversation, as Rasa stored it (redacted, the mention taken out)."""
        return [str(e.get("text")) for e in self.tracker_events(conversation) if e.get("event") == "user"]

    def wait_for_turns(self, conversation: str, count: int, timeout: float = 30.0) -> list[str]:
        """The conversation's user texts once it holds at least `count` (or whatever it holds after `timeout`
        seconds). Every answer to them has been posted by then: Rasa saves the tracker after it has sent a
        turn's answers. And Rasa takes one conversation's messages one at a time, in order, so a message
        the test sent earlier in the same thread is in them too, or will never be: a later message that
        must be answered is the barrier for "the earlier one did nothing"."""
        deadline = time.monotonic() + timeout
        while len(texts := self.user_texts(conversation)) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return texts

    def link(self, handle: str, slack_user: str) -> None:
        """Link a Slack user to the KeyMedic user `handle`, as a confirmed link does (created when new)."""
        from bot.config import load_settings
        from bot.store import services
        from bot.store.crypto import load_key_ring
        from bot.store.db import create_database
        from bot.store.slack import SLACK_USER_CHANNEL, slack_identity
        from bot.store.unit_of_work import SqlAlchemyUnitOfWork

        database = create_database(self.database_url)
        try:
            from dataclasses import replace

            settings = replace(load_settings(), var_dir=self.var_dir, database_url=self.database_url)
            uow = SqlAlchemyUnitOfWork(database, load_key_ring(settings))
            with uow:
                user = services.ensure_user(uow, handle)
                services.link_identity(
                    uow, user, channel=SLACK_USER_CHANNEL, external_id=slack_identity(self.team, slack_user)
                )
                uow.commit()
        finally:
            database.dispose()


def start_slack_stack(tmp: Any, names: tuple[str, ...]) -> Any:
    """Start the named local services (`bot.launcher.local_services`) with the Slack channel pointed at a
    fresh `FakeSlackApi`; a context manager yielding the `SlackStack`."""
    import os
    import secrets

    from bot.demo import prepare_database
    from bot.launcher import (
        child_environment,
        isolated_environment,
        isolated_settings,
        local_services,
        start_services,
        stop_services,
    )
    from bot.training import ensure_model

    @contextlib.contextmanager
    def running() -> Any:
        var_dir = tmp
        settings = isolated_settings(var_dir)
        secret = secrets.token_hex(16)
        with FakeSlackApi() as fake:
            env = child_environment(
                settings,
                {
                    **isolated_environment(var_dir),
                    "KEYMEDIC_SLACK_SIGNING_SECRET": secret,
                    "KEYMEDIC_SLACK_BOT_TOKEN": "xoxb-keymedic-test-token",
                    "KEYMEDIC_SLACK_API_URL": fake.api_url,
                },
            )
            prepare_database(settings)
            # `KEYMEDIC_TEST_MODEL` names a trained model to use as is (while others edit the training data,
            # a developer can run these tests against the last good model); by default, the current one.
            pinned = os.environ.get("KEYMEDIC_TEST_MODEL", "").strip()
            model = Path(pinned) if pinned else ensure_model()
            services = [s for s in local_services(settings, model) if s.name in names]
            try:
                start_services(services, env, var_dir / "logs")
                yield SlackStack(
                    rasa_url=f"http://127.0.0.1:{settings.rasa_port}",
                    web_url=f"http://127.0.0.1:{settings.web_port}",
                    signing_secret=secret,
                    fake=fake,
                    database_url=settings.database_url,
                    var_dir=var_dir,
                    env=env,
                )
            finally:
                stop_services(services)

    return running()
