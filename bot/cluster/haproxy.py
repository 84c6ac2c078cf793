"""HAProxy in front of the Rasa replicas and the action servers: generated configuration (docs/deploy.md).

`keymedic cluster` writes one file per balancer and runs `haproxy -f <file> -db` as a supervised child;
deploy/haproxy/*.cfg are the same function's output for compose (a unit test keeps them equal). No framework
here: a `Frontend` in, the text of haproxy.cfg out.

What each rule is for:

- **HTTP** (the REST channel, Rasa's HTTP API, the agent API's relays): round-robin over the servers that are
  up. A connection that could not even be opened is retried on the next server (`retries` with
  `option redispatch 1`: nothing reached the first one, so nothing can happen twice); a request a server
  received and then failed is a 502, never replayed (HAProxy retries only on connection failures by default),
  because the turn may already be in the tracker store.
- **socket.io**: an Engine.IO session lives in one process, so its long-polling requests and its WebSocket
  upgrade must reach the server that opened it. As socket.io's documentation describes for HAProxy: the
  session's server is chosen by a hash of the client's address (`balance source`, consistent hashing so a
  server going away moves only its own clients), and a cookie pins a client that sends cookies back even when
  the set of servers changes. The widget's polling is cross-origin without credentials, so the address hash
  is what holds it; Rasa's own server sets no `io` cookie. Replies reach a socket from any replica through
  the Redis client manager (`KEYMEDIC_SOCKETIO_REDIS_URL`). WebSockets pass through (`timeout tunnel`).
- **Health**: `option httpchk` probes every server (`GET /` for Rasa, `/health/live` for the action servers);
  a refused connection takes a server down at once (`observe layer4`), a passing probe brings it back.
  HAProxy answers `/health/live` and `/health/ready` itself (ready = at least one server up).
- **Public edge** (`public_prefixes`): only paths under those prefixes reach a server (compose's `edge`:
  `/socket.io/` and `/webhooks/slack/`); everything else, Rasa's HTTP API above all, is a 404 from HAProxy.
  Dot segments, percent-escapes and backslashes are refused too, so no spelling of a path climbs out of a
  prefix on its way to Rasa's router.
- **Logs**: one JSON line per request on stdout (the launcher's log file), with the path but never the query
  string or a header: a query string can carry a token, and headers carry the agent's and Rasa's.

Every proxied response carries `X-KeyMedic-Upstream: <server name>`, so logs and tests can see who answered.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["UPSTREAM_HEADER", "COOKIE", "Frontend", "Server", "binary", "command", "render", "servers"]

UPSTREAM_HEADER: Final = "X-KeyMedic-Upstream"
# The cookie HAProxy sets to pin a socket.io client to its server (its value is the server's name).
COOKIE: Final = "KEYMEDIC_REPLICA"
_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]+$")
# A prefix goes into an ACL pattern unquoted: plain path characters only, starting and ending with "/".
_PREFIX: Final = re.compile(r"^/[A-Za-z0-9_./-]*/$")
_LOG_FORMAT: Final = (
    '{"time":"%tr","frontend":"%ft","backend":"%b","server":"%s","method":"%HM","path":"%HPO",'
    '"status":%ST,"bytes":%B,"total_ms":%Ta,"connect_ms":%Tc,"termination":"%tsc"}'
)


@dataclass(frozen=True)
class Server:
    """One replica: its name (in logs and `X-KeyMedic-Upstream`) and address."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class Frontend:
    """One balancer: where it listens and the servers behind it."""

    name: str
    bind: str  # host:port
    servers: tuple[Server, ...]
    probe_path: str = "/"
    # Requests under this prefix are socket.io's and sticky; "" when the servers speak no socket.io.
    socketio_prefix: str = "/socket.io/"
    # Not empty: a public edge that forwards only these prefixes.
    public_prefixes: tuple[str, ...] = ()
    check_interval_ms: int = 2000

    def __post_init__(self) -> None:
        names = [self.name, *(s.name for s in self.servers)]
        if not all(_NAME.match(n) for n in names) or len(set(names)) != len(names):
            raise ValueError(f"names must be distinct and plain (letters, digits, _.-): {names}")
        for prefix in (*self.public_prefixes, *([self.socketio_prefix] if self.socketio_prefix else [])):
            if not _PREFIX.match(prefix):
                raise ValueError(f"a path prefix is /plain/path/ with a trailing slash, got {prefix!r}")
        if not self.probe_path.startswith("/") or " " in self.probe_path:
            raise ValueError(f"a probe path is an absolute path, got {self.probe_path!r}")


def _json(status: int, body: str, condition: str) -> str:
    return (
        f"    http-request return status {status} content-type application/json string '{body}' {condition}"
    )


def _backend(name: str, frontend: Frontend, *, sticky: bool) -> list[str]:
    lines = [f"backend {name}"]
    if sticky:
        lines += [
            "    balance source",
            "    hash-type consistent",
            f"    cookie {COOKIE} insert indirect nocache httponly",
        ]
    else:
        lines.append("    balance roundrobin")
    lines += [
        f"    option httpchk GET {frontend.probe_path}",
        "    http-check expect status 200",
        f"    http-response set-header {UPSTREAM_HEADER} %s",
        # A refused connection marks the server down at once; the probe brings it back.
        f"    default-server check inter {frontend.check_interval_ms} fall 2 rise 1"
        " observe layer4 error-limit 1 on-error mark-down",
    ]
    for server in frontend.servers:
        cookie = f" cookie {server.name}" if sticky else ""
        lines.append(f"    server {server.name} {server.host}:{server.port}{cookie}")
    return lines


def render(frontend: Frontend) -> str:
    """The whole haproxy.cfg of one balancer."""
    backend = frontend.name
    sticky = f"{frontend.name}-socketio"
    lines = [
        "# Generated by bot/cluster/haproxy.py (keymedic cluster, deploy/haproxy/): edit that module.",
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        f"    log-format '{_LOG_FORMAT}'",
        "    timeout connect 3s",
        "    timeout client 60s",
        # A turn with a live key test takes up to ~10 s; Rasa's own request timeout is longer still.
        "    timeout server 60s",
        "    timeout http-request 10s",
        # An idle WebSocket stays open: socket.io pings every 25 s.
        "    timeout tunnel 1h",
        "    retries 2",
        "    option redispatch 1",
        "    option forwardfor",
        # One request per client connection. When a replica dies after a request arrived that was not the
        # first on its client connection, HAProxy closes that connection without a word (so that a browser may
        # send it again); a turn must get its 502 instead, and is never sent twice. A WebSocket: one request.
        "    option httpclose",
        # The clients read JSON errors, as from the web app.
        '    http-error status 502 content-type application/json string \'{"error":"upstream_failed"}\'',
        '    http-error status 503 content-type application/json string \'{"error":"no_upstream"}\'',
        '    http-error status 504 content-type application/json string \'{"error":"upstream_timeout"}\'',
        "",
        f"frontend {frontend.name}",
        f"    bind {frontend.bind}",
        _json(200, '{"status":"ok"}', "if { path /health/live }"),
        _json(503, '{"status":"unavailable"}', f"if {{ path /health/ready }} {{ nbsrv({backend}) eq 0 }}"),
        _json(200, '{"status":"ok"}', "if { path /health/ready }"),
    ]
    if frontend.public_prefixes:
        lines += [
            _json(
                404, '{"error":"not_public"}', r"if { path_sub % \\ } || { path_reg -- '(^|/)\.\.?(/|$)' }"
            ),
            _json(
                404, '{"error":"not_public"}', f"unless {{ path_beg {' '.join(frontend.public_prefixes)} }}"
            ),
        ]
    if frontend.socketio_prefix:
        lines.append(f"    use_backend {sticky} if {{ path_beg {frontend.socketio_prefix} }}")
    lines += [f"    default_backend {backend}", "", *_backend(backend, frontend, sticky=False)]
    if frontend.socketio_prefix:
        lines += ["", *_backend(sticky, frontend, sticky=True)]
    return "\n".join(lines) + "\n"


def servers(kind: str, host_ports: Sequence[tuple[str, int]]) -> tuple[Server, ...]:
    """`kind-1`, `kind-2`, … at the given addresses."""
    return tuple(Server(f"{kind}-{i + 1}", host, port) for i, (host, port) in enumerate(host_ports))


def binary() -> str | None:
    """Where Debian's haproxy is (scripts/ensure-services installs it), or None."""
    # /usr/sbin is not on every user's PATH.
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def command(config: Path) -> list[str]:
    """HAProxy in the foreground (`-db`), so the launcher supervises it like any other child."""
    return [binary() or "haproxy", "-f", str(config), "-db"]


def compose_frontends() -> dict[str, Frontend]:
    """deploy/compose.yml's three balancers, by the file name of their configuration in deploy/haproxy/."""
    rasa = servers("rasa", [("rasa-1", 5005), ("rasa-2", 5005)])
    return {
        # The web app, the workers and the action servers reach Rasa's HTTP API here (with its token).
        "rasa": Frontend("rasa", ":5005", rasa),
        # The published edge: the widget's socket.io and Slack's events, nothing else of Rasa.
        "edge": Frontend("edge", ":5005", rasa, public_prefixes=("/socket.io/", "/webhooks/slack/")),
        "actions": Frontend(
            "actions",
            ":5055",
            servers("actions", [("actions-1", 5055), ("actions-2", 5055)]),
            probe_path="/health/live",
            socketio_prefix="",
        ),
    }


def write_compose_configs(directory: Path) -> list[Path]:
    """Write deploy/haproxy/<name>.cfg (`python -m bot.cluster.haproxy deploy/haproxy`)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frontend in compose_frontends().items():
        path = directory / f"{name}.cfg"
        path.write_text(render(frontend))
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_compose_configs(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/haproxy")):
        print(written)
