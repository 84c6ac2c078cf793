"""Several Rasa replicas on the real PostgreSQL and Redis of this machine (docs/deploy.md).

One cluster for this module, as `keymedic cluster` starts it (bot.cluster.topology): sandbox, action server
with two Sanic workers, two Huey workers on Redis, web app, two Rasa replicas on `endpoints.cluster.yml` and
the balancer. It has its own PostgreSQL databases (KeyMedic's and the tracker store's, dropped at the end)
and its own Redis namespace (keys deleted at the end).

The tests run in file order: the last one kills a replica.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
from sqlalchemy import create_engine, pool, text

from bot import launcher
from bot.cluster.haproxy import UPSTREAM_HEADER
from bot.cluster.stores import ensure_postgres_database, resolve_stores
from bot.cluster.topology import ClusterOptions, cluster_environment, cluster_services
from bot.demo import prepare_database
from bot.launcher import (
    Service,
    free_port,
    isolated_environment,
    isolated_settings,
    start_services,
    stop_services,
)
from bot.training import ensure_model
from channels.identity import session_id_for
from tests.support.store import create_postgres_database, drop_postgres_database

pytestmark = [pytest.mark.e2e, pytest.mark.rasa_model]

REDIS_DB = 12
USERS = 50
# Turns that every user can have whatever their wallets: FAQ answers and small talk, each answered by Rasa
# with the action server in the loop (the forms' and FAQ's actions run there).
SCRIPT = (
    "hi",
    "what permissions should the key have?",
    "do I need a passphrase?",
    "should I whitelist an IP?",
    "thanks",
)
# How Rasa's lock errors read (rasa/core/lock_store.py), should one ever be passed on to a user.
LOCK_ERRORS = ("LockError", "acquire lock", "acquiring lock", "lock store")
# Rasa's lock lifetime in this cluster: how long a killed replica's lock can hold up a conversation.
LOCK_LIFETIME_S = 15


@dataclass
class Cluster:
    services: dict[str, Service]
    balancer_url: str
    replica_urls: list[str]
    tracker_url: str
    env: dict[str, str]
    web_port: int


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    var_dir = tmp_path_factory.mktemp("cluster-var")
    # The model first: training may fail, and nothing has been created yet that would need cleaning up.
    model = Path(os.environ.get("KEYMEDIC_CLUSTER_TEST_MODEL", "") or ensure_model())
    database_url = create_postgres_database()  # keymedic_test_<random>, migrated
    tracker_url = database_url + "_tracker"
    namespace = f"kmtest{secrets.token_hex(4)}"
    settings = replace(
        isolated_settings(var_dir),
        database_url=database_url,
        tracker_url=tracker_url,
        redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
        redis_namespace=namespace,
        socketio_redis_url="",
    )
    stores = resolve_stores(settings)
    assert ensure_postgres_database(stores.tracker_url)  # the cluster creates what is missing
    assert not ensure_postgres_database(stores.tracker_url)
    prepare_database(settings)
    options = ClusterOptions(
        replicas=2,
        lock_lifetime_s=LOCK_LIFETIME_S,
        ports=(free_port(), free_port()),
        action_ports=(free_port(), free_port()),
    )
    env = cluster_environment(settings, stores, options, isolated_environment(var_dir))
    services = cluster_services(settings, model, options)
    try:
        with pytest.MonkeyPatch.context() as patch:
            # Two models loading at once on a shared 2-core machine can take longer than one alone.
            patch.setattr(launcher, "READY_TIMEOUT_S", max(launcher.READY_TIMEOUT_S, 420.0))
            start_services(services, env, var_dir / "logs")
        yield Cluster(
            services={s.name: s for s in services},
            balancer_url=f"http://127.0.0.1:{settings.rasa_port}",
            replica_urls=[f"http://127.0.0.1:{port}" for port in options.ports],
            tracker_url=stores.tracker_url,
            env=env,
            web_port=settings.web_port,
        )
    finally:
        stop_services(services)
        drop_postgres_database(tracker_url)
        drop_postgres_database(database_url)
        client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
        for key in client.scan_iter(match=f"*{namespace}*"):
            client.delete(key)
        client.close()


def tracker_events(cluster: Cluster, sender: str) -> list[dict[str, Any]]:
    """The conversation's events as the tracker store holds them, in the order they were stored."""
    engine = create_engine(cluster.tracker_url, poolclass=pool.NullPool, future=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender}
            ).all()
    finally:
        engine.dispose()
    return [json.loads(row[0]) for row in rows]


def turns_of(events: list[dict[str, Any]]) -> list[tuple[str, list[str | None]]]:
    """(user text, the bot's texts until the next user message) for each user message."""
    turns: list[tuple[str, list[str | None]]] = []
    for event in events:
        if event["event"] == "user":
            turns.append((event["text"], []))
        elif event["event"] == "bot" and turns:
            turns[-1][1].append(event.get("text"))
    return turns


@dataclass
class Sent:
    text: str
    replies: list[dict[str, Any]]
    upstream: str


async def say(http: httpx.AsyncClient, url: str, sender: str, message: str) -> Sent:
    response = await http.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message})
    assert response.status_code == 200, (
        f"{sender} {message!r} on {url}: {response.status_code} {response.text}"
    )
    replies = response.json()
    # A lock error would surface as a 500 (above) or in the text; neither may reach a user.
    assert not any(sign in response.text for sign in LOCK_ERRORS), response.text
    return Sent(message, replies, response.headers.get(UPSTREAM_HEADER, url))


def assert_conversation_complete(cluster: Cluster, sender: str, sent: list[Sent]) -> None:
    turns = turns_of(tracker_events(cluster, sender))
    # Every turn is in the store once, in the order it was sent ...
    assert [user for user, _ in turns] == [s.text for s in sent], sender
    for (_, bot_texts), s in zip(turns, sent, strict=True):
        # ... answered, and answered once: what the store says the bot said is what the user got.
        assert bot_texts, f"{sender}: {s.text!r} was never answered"
        assert bot_texts == [r.get("text") for r in s.replies], f"{sender}: {s.text!r}"


async def test_fifty_users_alternating_replicas_keep_complete_ordered_conversations(cluster: Cluster) -> None:
    a, b = cluster.replica_urls
    limits = httpx.Limits(max_connections=USERS * 2, max_keepalive_connections=USERS * 2)
    async with httpx.AsyncClient(timeout=180, limits=limits, trust_env=False) as http:

        async def user(i: int) -> tuple[str, list[Sent]]:
            sender = f"cluster-user-{i}"
            sent: list[Sent] = []
            for turn, message in enumerate(SCRIPT):
                # Even users go straight to the replicas, taking turns (odd users start on the other one);
                # odd users go through the balancer, which spreads them as it likes.
                if i % 2 == 0:
                    url = (a, b)[(turn + i // 2) % 2]
                else:
                    url = cluster.balancer_url
                sent.append(await say(http, url, sender, message))
            return sender, sent

        started = time.monotonic()
        results = await asyncio.gather(*(user(i) for i in range(USERS)))
        elapsed = time.monotonic() - started
    print(f"\n{USERS} users x {len(SCRIPT)} turns on 2 replicas: {elapsed:.1f} s")
    for sender, sent in results:
        assert_conversation_complete(cluster, sender, sent)
    # The balancer really spread its users over both replicas, and most of them saw both.
    through_balancer = [sent for sender, sent in results if int(sender.rsplit("-", 1)[1]) % 2]
    assert {s.upstream for sent in through_balancer for s in sent} == {"rasa-1", "rasa-2"}
    assert (
        sum(len({s.upstream for s in sent}) == 2 for sent in through_balancer) >= len(through_balancer) // 2
    )


async def test_one_conversation_sent_to_both_replicas_at_once_is_answered_in_turn(cluster: Cluster) -> None:
    # Two messages of one user at the same moment on two replicas: the Redis lock store makes one wait for
    # the other, so the store holds them one after the other, never interleaved.
    a, b = cluster.replica_urls
    sender = "cluster-double-typer"
    async with httpx.AsyncClient(timeout=180, trust_env=False) as http:
        first = await say(http, a, sender, "hi")
        for _ in range(5):
            pair = await asyncio.gather(
                say(http, a, sender, "do I need a passphrase?"), say(http, b, sender, "thanks")
            )
            assert all(p.replies for p in pair)
    turns = turns_of(tracker_events(cluster, sender))
    assert turns[0] == ("hi", [r.get("text") for r in first.replies])
    assert sorted(user for user, _ in turns[1:]) == sorted(["do I need a passphrase?", "thanks"] * 5)
    assert all(bot for _, bot in turns), "a message was stored without its answer"


async def wait_for_tickets(cluster: Cluster, users: list[str], more_than: int, timeout: float = 10) -> None:
    """Wait until more than `more_than` of these conversations hold a lock ticket (are being answered)."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    prefix = f"{cluster.env['KEYMEDIC_REDIS_NAMESPACE']}:lock:"
    deadline = time.monotonic() + timeout
    try:
        most = 0
        while time.monotonic() < deadline:
            values = client.mget([prefix + u for u in users])
            held = sum(1 for v in values if v is not None and json.loads(v)["tickets"])
            if held > more_than:
                return
            most = max(most, held)
            await asyncio.sleep(0.005)
    finally:
        client.close()
    raise AssertionError(f"never more than {more_than} conversations answered at once (at most {most})")


def _widget_token(cluster: Cluster, user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "aud": "keymedic-widget", "iat": now, "exp": now + 600}
    return jwt.encode(claims, cluster.env["KEYMEDIC_WIDGET_JWT_SECRET"], algorithm="HS256")


class Widget:
    """The widget's socket.io client, spoken by hand (python-socketio's async client needs aiohttp >= 3.10
    for WebSockets; Rasa pins 3.9): a long-polling handshake, the namespace connect with the JWT, then the
    upgrade to a WebSocket, as socket.io's browser client does."""

    def __init__(self, http: httpx.AsyncClient, base: str, origin: str) -> None:
        self.http, self.base, self.headers = http, base, {"Origin": origin}
        self.sid = ""
        self.events: list[tuple[str, Any]] = []
        self.upstream = ""

    def _url(self) -> str:
        return f"{self.base}/socket.io/?EIO=4&transport=polling" + (f"&sid={self.sid}" if self.sid else "")

    def _take(self, packets: str) -> None:
        for packet in packets.split("\x1e"):
            if packet.startswith("42"):
                name, *data = json.loads(packet[2:])
                self.events.append((name, data[0] if data else None))
            elif packet.startswith("44"):
                raise AssertionError(f"connection refused: {packet}")

    async def connect(self, token: str) -> None:
        opened = await self.http.get(self._url(), headers=self.headers)
        assert opened.status_code == 200, opened.text
        self.upstream = opened.headers.get(UPSTREAM_HEADER, self.base)
        self.sid = json.loads(opened.text[1:])["sid"]
        await self._post("40" + json.dumps({"token": token}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            polled = await self.http.get(self._url(), headers=self.headers)
            assert polled.status_code == 200, polled.text
            self._take(polled.text)
            if "40{" in polled.text:
                return
        raise AssertionError("no namespace connect acknowledgement")

    async def _post(self, packet: str) -> None:
        response = await self.http.post(self._url(), content=packet, headers=self.headers)
        assert response.status_code == 200, response.text

    async def emit(self, name: str, data: Any) -> None:
        await self._post("42" + json.dumps([name, data]))

    async def wait_for(self, name: str, predicate: Any = None, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for seen in list(self.events):
                if seen[0] == name and (predicate is None or predicate(seen[1])):
                    self.events.remove(seen)
                    return seen[1]
            polled = await self.http.get(self._url(), headers=self.headers, timeout=timeout)
            assert polled.status_code == 200, polled.text
            if polled.text == "2":
                await self._post("3")
            self._take(polled.text)
        raise AssertionError(f"no {name} within {timeout} s; saw {self.events}")


async def test_an_agent_message_sent_through_one_replica_reaches_a_widget_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster.replica_urls
    user = f"widget-user-{secrets.token_hex(3)}"
    session_id = session_id_for(user)
    origin = f"http://127.0.0.1:{cluster.web_port}"
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        widget = Widget(http, a, origin)  # the socket lives on replica 1
        await widget.connect(_widget_token(cluster, user))
        await widget.emit("session_request", {"session_id": session_id})
        assert await widget.wait_for("session_confirm") == session_id
        await widget.emit("user_uttered", {"message": "hi", "session_id": session_id})
        assert (await widget.wait_for("bot_uttered")).get("text")
        # The agent API relays through whichever replica the balancer picks; here, explicitly, replica 2,
        # which holds no socket of this user: only the Redis client manager can bring the message over.
        relayed = await http.post(
            f"{b}/conversations/{session_id}/tracker/events",
            params={
                "output_channel": "latest",
                "execute_side_effects": "true",
                "token": cluster.env["KEYMEDIC_RASA_TOKEN"],
            },
            json={"event": "bot", "text": "Hi, Sam from support here."},
        )
        assert relayed.status_code == 200, relayed.text
        message = await widget.wait_for(
            "bot_uttered", lambda m: m.get("text") == "Hi, Sam from support here."
        )
        assert message["text"] == "Hi, Sam from support here."


async def test_the_widget_through_the_balancer_keeps_its_session_on_one_replica(cluster: Cluster) -> None:
    origin = f"http://127.0.0.1:{cluster.web_port}"
    upstreams = set()
    # HAProxy places a socket.io client by its address: users on different addresses (all of 127/8 is this
    # machine) are spread over the replicas, and each keeps its session on one.
    for n in range(1, 9):
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{n}")
        async with httpx.AsyncClient(timeout=60, trust_env=False, transport=transport) as http:
            user = f"widget-balanced-{n}-{secrets.token_hex(3)}"
            widget = Widget(http, cluster.balancer_url, origin)
            await widget.connect(_widget_token(cluster, user))
            await widget.emit("user_uttered", {"message": "hi", "session_id": session_id_for(user)})
            assert (await widget.wait_for("bot_uttered")).get("text")
            upstreams.add(widget.upstream)
    assert upstreams == {"rasa-1", "rasa-2"}


async def test_killing_a_replica_mid_run_its_users_carry_on_on_the_other(cluster: Cluster) -> None:
    victim = cluster.services["rasa-2"]
    assert victim.process is not None
    users = [f"cluster-survivor-{i}" for i in range(20)]
    history: dict[str, list[Sent]] = {u: [] for u in users}
    async with httpx.AsyncClient(timeout=180, trust_env=False) as http:
        for u in users:  # one turn each, spread over both replicas by the balancer
            history[u].append(await say(http, cluster.balancer_url, u, "hi"))
        on_victim = {u for u in users if history[u][-1].upstream == "rasa-2"}
        assert on_victim, "the balancer sent nobody to rasa-2"

        async def second_turn(u: str) -> httpx.Response:
            return await http.post(
                f"{cluster.balancer_url}/webhooks/rest/webhook",
                json={"sender": u, "message": "what permissions should the key have?"},
            )

        in_flight = [asyncio.create_task(second_turn(u)) for u in users]
        # Kill once both replicas are answering: a replica holds a conversation's ticket in Redis while it
        # answers, and one replica has only half of the users, so more tickets than that means rasa-2 is
        # answering some. Its tickets outlive it: their users' next messages wait for them to expire.
        await wait_for_tickets(cluster, users, more_than=len(users) // 2)
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        outcomes = await asyncio.gather(*in_flight)
        failed = set()
        for u, response in zip(users, outcomes, strict=True):
            if response.status_code == 200:
                history[u].append(
                    Sent(
                        "what permissions should the key have?",
                        response.json(),
                        response.headers[UPSTREAM_HEADER],
                    )
                )
            else:
                # Only a turn the dead replica was answering may fail, and it says so plainly.
                assert response.status_code == 502 and response.json() == {"error": "upstream_failed"}
                failed.add(u)

        # Every user, the victim's first, goes on talking: answered by the replica that is left.
        started = time.monotonic()
        for u in sorted(users, key=lambda u: u not in on_victim):
            sent = await say(http, cluster.balancer_url, u, "do I need a passphrase?")
            assert sent.upstream == "rasa-1"
            history[u].append(sent)
        waited = time.monotonic() - started
    assert failed, "the kill hit no turn in flight"
    print(f"\nkilled rasa-2: {len(failed)} in-flight turn(s) failed; the rest answered in {waited:.1f} s")
    for u in users:
        turns = turns_of(tracker_events(cluster, u))
        if u in failed:
            # The dead replica's turn is in the store whole (saved before it died) or not at all.
            if len(turns) == 3:
                assert turns[1][0] == "what permissions should the key have?" and turns[1][1]
                turns = [turns[0], turns[2]]
            assert [t for t, _ in turns] == ["hi", "do I need a passphrase?"], u
            for (_, bot_texts), s in zip(turns, history[u], strict=True):
                assert bot_texts == [r.get("text") for r in s.replies]
        else:
            assert_conversation_complete(cluster, u, history[u])
