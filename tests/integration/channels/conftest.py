"""The real Rasa server with KeyMedic's channels (credentials.yml), started once for this folder.

Rasa and the action server run at debug level, so their logs are the most a secret could leak into. Rasa
reaches the action server through `RecordingProxy`, which keeps every request body Rasa sent: what the action
server received, byte for byte (rasa_sdk does not log payloads). The tracker store is a fresh SQLite file.
Only the processes these tests need start: the sandbox, the action server and Rasa (no worker, no web app).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bot.config import Settings
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
from tests.support.slack import LoopbackServer

WIDGET_ORIGIN = "http://widget.keymedic.test"
AUDIENCE = "keymedic-widget"


class RecordingProxy(LoopbackServer):
    """Forwards POSTs to the action server and keeps each request body."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.bodies: list[bytes] = []
        super().__init__()

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, bytes]:
        self.bodies.append(body)
        try:
            upstream = httpx.post(
                f"{self.target}{path}",
                content=body,
                headers={
                    "Content-Type": headers.get("Content-Type", "application/json"),
                    # Rasa's token for the action server (endpoints.yml), passed on as a proxy would.
                    "Authorization": headers.get("Authorization", ""),
                },
                timeout=60,
                trust_env=False,
            )
        except httpx.HTTPError:
            return 502, b"{}"
        return upstream.status_code, upstream.content


@dataclass
class ChannelStack:
    rasa_url: str
    settings: Settings
    tracker_db: Path
    rasa_log: Path
    actions_log: Path
    proxy: RecordingProxy
    jwt_secret: str = field(repr=False)
    # Rasa's --auth-token (its HTTP API answers 401 without it; the channel webhooks need none).
    rasa_token: str = field(default="", repr=False)

    def say(self, sender: str, text: str, **extra: Any) -> list[dict[str, Any]]:
        """One message over the REST channel; the bot's replies."""
        response = httpx.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, **extra},
            timeout=60,
            trust_env=False,
        )
        response.raise_for_status()
        replies: list[dict[str, Any]] = response.json()
        return replies

    def token(
        self,
        sub: str,
        *,
        expires_in: float = 300,
        secret: str | None = None,
        audience: str = AUDIENCE,
    ) -> str:
        """A widget JWT as the host app mints it."""
        now = int(time.time())
        claims = {"sub": sub, "aud": audience, "iat": now, "exp": int(now + expires_in)}
        return jwt.encode(claims, secret or self.jwt_secret, algorithm="HS256")

    def stored_bytes(self) -> bytes:
        """Everything the tracker store wrote: the database file and any journal beside it."""
        return b"".join(p.read_bytes() for p in self.tracker_db.parent.glob(self.tracker_db.name + "*"))


@pytest.fixture(scope="session")
def channel_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelStack]:
    var_dir = tmp_path_factory.mktemp("channels-var")
    settings = isolated_settings(var_dir)
    jwt_secret = secrets.token_urlsafe(48)
    tracker_db = var_dir / "tracker.db"
    env = child_environment(
        settings,
        {
            **isolated_environment(var_dir),
            "KEYMEDIC_WIDGET_JWT_SECRET": jwt_secret,
            "KEYMEDIC_WIDGET_ORIGINS": WIDGET_ORIGIN,
            "KEYMEDIC_WIDGET_JWT_AUDIENCE": AUDIENCE,
        },
    )
    prepare_database(settings)
    services = [
        s for s in local_services(settings, ensure_model()) if s.name in ("sandbox", "actions", "rasa")
    ]
    with RecordingProxy(f"http://127.0.0.1:{settings.actions_port}") as proxy:
        for service in services:
            if service.name in ("actions", "rasa"):
                service.argv.append("--debug")
            if service.name == "rasa":
                service.extra_env["ACTIONS_PORT"] = str(proxy.port)
        try:
            start_services(services, env, var_dir / "logs")
            yield ChannelStack(
                rasa_url=f"http://127.0.0.1:{settings.rasa_port}",
                settings=settings,
                tracker_db=tracker_db,
                rasa_log=var_dir / "logs" / "rasa.log",
                actions_log=var_dir / "logs" / "actions.log",
                proxy=proxy,
                jwt_secret=jwt_secret,
                rasa_token=env["KEYMEDIC_RASA_TOKEN"],
            )
        finally:
            stop_services(services)
