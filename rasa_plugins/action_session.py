"""Keep the Rasa server's HTTP connections to the action server open between calls.

Rasa 3.6 sends every action call through `EndpointConfig.request` (rasa/utils/endpoints.py), which opens a new
`aiohttp.ClientSession` for the call and closes it afterwards: a new connector, a new TCP connection (and its
accept on the action server's side) for each of the one or two calls a KeyMedic turn makes. Profiled in the
Rasa server of a scripted run (py-spy, docs/bench.md), opening and closing those sessions was about an eighth
of the event loop's busy time.

`PATCHES` (installed by `rasa_plugins.startup.install`) makes `EndpointConfig.session` hand out one kept
session per event loop and per session settings (headers and basic auth, the only things Rasa configures a
session with); `async with endpoint.session()` then borrows it instead of closing it. Everything per
request (URL, method, parameters, timeout, TLS context) is still passed per request by Rasa, unchanged. The
kept sessions encode request bodies with ujson (`rasa_plugins.fast_json`).

An idle kept connection is closed by this side after `KEEPALIVE_S`, before any server here closes it
(rasa_sdk's Sanic after 5 s, KeyMedic's balancer after 75 s): a connection the server has already closed
would fail the next call made on it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
from types import TracebackType
from typing import Any

import aiohttp
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.utils.endpoints import EndpointConfig

from rasa_plugins import fast_json, patching

__all__ = ["PATCHES", "KEEPALIVE_S", "close_kept_sessions"]

KEEPALIVE_S = 2.0

# (session settings) -> (the loop the session belongs to, the session)
_kept: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}


class _Borrowed:
    """`async with` over a kept session: entering hands it out, leaving keeps it open for the next call."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None


def _settings(endpoint: EndpointConfig) -> tuple[Any, ...]:
    auth = endpoint.basic_auth or {}
    return (
        tuple(sorted((endpoint.headers or {}).items())),
        auth.get("username"),
        auth.get("password"),
    )


def kept_session(endpoint: EndpointConfig) -> _Borrowed:
    """The kept session for `endpoint`'s settings on the running loop, opened on first use."""
    loop = asyncio.get_running_loop()
    key = _settings(endpoint)
    found = _kept.get(key)
    if found is None or found[0] is not loop or found[1].closed:
        auth = endpoint.basic_auth
        session = aiohttp.ClientSession(
            headers=endpoint.headers,
            auth=aiohttp.BasicAuth(auth["username"], auth["password"]) if auth else None,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
            json_serialize=fast_json.dumps,
        )
        _kept[key] = (loop, session)
        return _Borrowed(session)
    return _Borrowed(found[1])


PATCHES = (
    patching.Patch(
        EndpointConfig,
        "session",
        kept_session,
        "e55aa13d9d4fb4bc440ac33b870a97ee162b76dda7ccb6bf68433567475fdffb",
    ),
)


async def close_kept_sessions() -> None:
    """Close the sessions kept on the running loop (a server shutting down, a test's end)."""
    loop = asyncio.get_running_loop()
    for key, (owner, session) in list(_kept.items()):
        if owner is loop:
            del _kept[key]
            await session.close()


def _let_go_at_exit() -> None:
    """At the process's end, after Sanic has closed its loop: close the kept connections' sockets without the
    loop and detach them, so that aiohttp does not log every kept session as "Unclosed" (an ERROR line in
    the Rasa server's log at each shutdown)."""
    for _, session in _kept.values():
        connector = session.connector
        session.detach()
        if connector is not None:
            with contextlib.suppress(Exception):
                connector._close()  # the synchronous part of `close()`; it skips a closed loop's transports
    _kept.clear()


atexit.register(_let_go_at_exit)
