"""Slack as the tests (and a local try-out without a workspace) see it: a stand-in for Slack's Web API, and
requests signed and shaped as Slack sends them (docs/slack.md "Testing").

`FakeSlackApi` is a real HTTP server on 127.0.0.1 that answers the Web API methods the channel calls
(`chat.postMessage`, `chat.postEphemeral`, `chat.update`) as Slack does and records each call; point
`KEYMEDIC_SLACK_API_URL` at `api_url`. It is the one external service KeyMedic's tests stand in for.

The builders follow Slack's documentation: the Events API's `event_callback` envelope (`team_id`,
`event_id`, `authorizations`, the `message` / `app_mention` event) sent as JSON, and interactivity's
`block_actions` payload sent as `application/x-www-form-urlencoded` with one `payload` field.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from channels.slack_signature import sign

__all__ = [
    "FakeSlackApi",
    "SlackCall",
    "signed_headers",
    "event_body",
    "message_event",
    "block_actions_form",
    "BOT_USER",
]

BOT_USER = "UKEYMEDIC"


@dataclass(frozen=True)
class SlackCall:
    """One Web API call the bot made: the method, its arguments, and the bearer token it sent."""

    method: str
    arguments: dict[str, Any]
    token: str


class FakeSlackApi:
    """Answers Slack Web API calls on 127.0.0.1 and remembers them."""

    def __init__(self) -> None:
        self.calls: list[SlackCall] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                media_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                if media_type == "application/json":
                    arguments = json.loads(raw or b"{}")
                else:
                    arguments = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                    for key in ("blocks", "attachments"):
                        if isinstance(arguments.get(key), str):
                            arguments[key] = json.loads(arguments[key])
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                method = self.path.rsplit("/", 1)[-1]
                answer = api._record(method, arguments, token)
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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

    def __enter__(self) -> FakeSlackApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


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
            timeout=30,
            trust_env=False,
        )
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json().get("events") or []
        return events

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
    import contextlib
    import os
    import secrets
    from dataclasses import replace

    from bot.config import load_settings
    from bot.demo import prepare_database
    from bot.launcher import child_environment, local_services, start_services, stop_services
    from bot.training import ensure_model

    def free_port() -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    @contextlib.contextmanager
    def running() -> Any:
        var_dir = tmp
        settings = replace(
            load_settings(),
            rasa_port=free_port(),
            actions_port=free_port(),
            sandbox_port=free_port(),
            web_port=free_port(),
            var_dir=var_dir,
            database_url=f"sqlite:///{var_dir / 'keymedic.db'}",
            jobs_url="",
            web_public_url="",
            rasa_url="",
        )
        secret = secrets.token_hex(16)
        with FakeSlackApi() as fake:
            base = {
                k: v for k, v in os.environ.items() if not (k.startswith("KEYMEDIC_") and k.endswith("_URL"))
            }
            env = child_environment(
                settings,
                {
                    **base,
                    "KEYMEDIC_TRACKER_DB": str(var_dir / "tracker.db"),
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
