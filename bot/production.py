"""What production mode refuses (DESIGN §8): every local convenience and every open internal door.

`KEYMEDIC_ENV=production` makes each KeyMedic process (web app, action server, job worker, Rasa through
`rasa_plugins.run`, `keymedic run`/`cluster`; the exchange sandbox never runs there) call `refuse_to_start`
before it serves anything. Each violation is one line naming the setting and why, never its value. A local
run (the default) has none of these checks: it generates its own keys and tokens and talks to the sandbox.

Exchange URLs: production talks to the real exchanges, so a `KEYMEDIC_<EXCHANGE>_URL` must be https (signed
requests, and OKX's passphrase header, would otherwise travel in clear) and must not point at this machine
or a private network, where the exchange sandbox lives. The one exception is a TLS endpoint the operator
runs on purpose (an egress proxy, a staging exchange, the tests' TLS sandbox): it needs its CA named in
`KEYMEDIC_EXCHANGE_CA_BUNDLE`, a deliberate act no leaked `make run` setting makes by accident. Plain http
is refused even then.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final, TextIO
from urllib.parse import urlsplit

import yaml

from bot.config import Settings

__all__ = ["MIN_TOKEN_BYTES", "violations", "rasa_credentials_violations", "refuse_to_start"]

# Tokens are bearer secrets that guard a whole API: at least 256 bits, what `secrets.token_urlsafe(32)`
# gives (RFC 7518 §3.2 asks the same of an HS256 key).
MIN_TOKEN_BYTES: Final = 32
# Rasa's REST channel lets whoever posts choose the sender id, i.e. the KeyMedic user (DESIGN §6).
_REST_CHANNELS: Final = ("rest", "channels.rest.RedactingRestInput")


def _token_problem(name: str, value: str, *, required: bool, purpose: str) -> str | None:
    if not value:
        return f"{name} is not set: {purpose}" if required else None
    if len(value.encode()) < MIN_TOKEN_BYTES:
        return f"{name} is shorter than {MIN_TOKEN_BYTES} bytes: {purpose}, and a short token can be guessed"
    return None


def _private_host(host: str) -> bool:
    """Loopback, unspecified, private or link-local: this machine or its network, never an exchange."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def _exchange_url_problems(settings: Settings) -> Iterable[str]:
    for exchange, url in settings.exchange_url_overrides:
        name = f"KEYMEDIC_{exchange.upper()}_URL"
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            yield f"{name} is not an https URL: signed requests would travel in clear"
        elif _private_host(parts.hostname) and not settings.exchange_ca_bundle:
            yield (
                f"{name} points at this machine or a private network (the exchange sandbox?), not the "
                "exchange; a TLS endpoint run on purpose needs its CA in KEYMEDIC_EXCHANGE_CA_BUNDLE"
            )


def violations(settings: Settings) -> list[str]:
    """Why `settings` must not run in production, one line each; [] when it may (or in local mode)."""
    if not settings.production:
        return []
    found = []
    if not settings.encryption_keys:
        found.append(
            "KEYMEDIC_ENCRYPTION_KEYS is not set: production never generates encryption keys (each process "
            "would make its own, and a restart would lose every credential)"
        )
    for problem in (
        _token_problem(
            "KEYMEDIC_RASA_TOKEN",
            settings.rasa_token,
            required=True,
            purpose="Rasa's HTTP API (trackers, trigger_intent, PUT /model) would be open",
        ),
        _token_problem(
            "KEYMEDIC_ACTIONS_TOKEN",
            settings.actions_token,
            required=True,
            purpose="the action server would run actions for anyone who can reach it",
        ),
        _token_problem(
            "KEYMEDIC_AGENT_TOKEN",
            settings.agent_token,
            required=False,
            purpose="it opens the agent API",
        ),
    ):
        if problem:
            found.append(problem)
    if settings.widget_demo_signin:
        found.append("KEYMEDIC_WIDGET_DEMO_SIGNIN is on: the demo sign-in is for local runs only")
    found.extend(_exchange_url_problems(settings))
    return found


def rasa_credentials_violations(settings: Settings, credentials: Path) -> list[str]:
    """Why Rasa's channel configuration `credentials` must not serve in production ([] in local mode)."""
    if not settings.production:
        return []
    try:
        channels = yaml.safe_load(credentials.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        return [f"cannot read the channel configuration {credentials.name} ({type(error).__name__})"]
    if any(name in channels for name in _REST_CHANNELS):
        return [
            f"{credentials.name} enables the REST channel, whose sender id anyone can choose; use "
            "credentials.production.yml"
        ]
    return []


def refuse_to_start(
    settings: Settings, process: str, extra: Iterable[str] = (), *, out: TextIO | None = None
) -> bool:
    """Print each violation (and each of `extra`) as `<process>: refusing to start in production: …` and
    return True when there is any; False when `process` may start."""
    found = [*violations(settings), *extra] if settings.production else []
    stream = sys.stderr if out is None else out
    for reason in found:
        print(f"{process}: refusing to start in production: {reason}", file=stream, flush=True)
    return bool(found)
