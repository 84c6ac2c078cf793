"""The haproxy.cfg that bot.cluster.haproxy writes: the rules the cluster and compose rely on, read as text.

tests/integration/cluster/test_haproxy.py runs the same configurations in a real HAProxy."""

from __future__ import annotations

import pytest

from bot.cluster.haproxy import COOKIE, UPSTREAM_HEADER, Frontend, Server, render, servers

RASA = servers("rasa", [("127.0.0.1", 7001), ("127.0.0.1", 7002)])


def _section(config: str, header: str) -> list[str]:
    """The lines of one section (`frontend rasa`, `backend rasa-socketio`), without its header."""
    lines = config.splitlines()
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return [line.strip() for line in lines[start:end] if line.strip()]


def test_http_is_round_robin_with_health_checks_and_names_the_server() -> None:
    config = render(Frontend("rasa", "127.0.0.1:7000", RASA))
    frontend = _section(config, "frontend rasa")
    assert frontend[0] == "bind 127.0.0.1:7000"
    assert frontend[-2:] == ["use_backend rasa-socketio if { path_beg /socket.io/ }", "default_backend rasa"]
    backend = _section(config, "backend rasa")
    assert "balance roundrobin" in backend
    assert "option httpchk GET /" in backend and "http-check expect status 200" in backend
    assert f"http-response set-header {UPSTREAM_HEADER} %s" in backend
    assert backend[-2:] == ["server rasa-1 127.0.0.1:7001", "server rasa-2 127.0.0.1:7002"]
    # Only a connection that failed is tried again elsewhere (HAProxy's default `retry-on conn-failure`).
    assert "retry-on" not in config and "option redispatch 1" in config
    # ... and a replica dying mid-request is a 502 even for a client that kept its connection.
    assert "    option httpclose" in config


def test_socketio_sticks_by_address_and_cookie_as_socketio_documents_for_haproxy() -> None:
    backend = _section(render(Frontend("rasa", "127.0.0.1:7000", RASA)), "backend rasa-socketio")
    assert backend[:3] == [
        "balance source",
        "hash-type consistent",
        f"cookie {COOKIE} insert indirect nocache httponly",
    ]
    assert backend[-2:] == [
        "server rasa-1 127.0.0.1:7001 cookie rasa-1",
        "server rasa-2 127.0.0.1:7002 cookie rasa-2",
    ]


def test_servers_without_socketio_have_one_backend() -> None:
    config = render(
        Frontend("actions", "127.0.0.1:7100", RASA, probe_path="/health/live", socketio_prefix="")
    )
    assert "socketio" not in config and "cookie" not in config
    assert "option httpchk GET /health/live" in _section(config, "backend actions")


def test_a_public_edge_refuses_everything_outside_its_prefixes_before_choosing_a_backend() -> None:
    config = render(Frontend("edge", ":5005", RASA, public_prefixes=("/socket.io/", "/webhooks/slack/")))
    frontend = _section(config, "frontend edge")
    refusals = [i for i, line in enumerate(frontend) if "not_public" in line]
    assert len(refusals) == 2 and max(refusals) < frontend.index("default_backend edge")
    assert frontend[refusals[1]].endswith("unless { path_beg /socket.io/ /webhooks/slack/ }")
    assert "path_sub % \\\\" in frontend[refusals[0]] and "path_reg" in frontend[refusals[0]]
    # The internal balancer has no such rule: the web app and the workers call Rasa's HTTP API through it.
    assert "not_public" not in render(Frontend("rasa", ":5005", RASA))


def test_the_access_log_leaves_out_query_strings_and_headers() -> None:
    config = render(Frontend("rasa", ":5005", RASA))
    [log_format] = [line for line in config.splitlines() if "log-format" in line]
    assert "%HPO" in log_format  # the path only
    for whole_request in ("%r", "%HU", "%hr", "%hs", "%HQ"):
        assert whole_request not in log_format
    assert "option httplog" not in config


@pytest.mark.parametrize(
    "frontend",
    [
        {"servers": (Server("a b", "h", 1),)},
        {"servers": (Server("rasa", "h", 1),)},  # the frontend's own name
        {"servers": RASA, "public_prefixes": ("/socket.io",)},  # no trailing slash: /socket.io.evil matches
        {"servers": RASA, "public_prefixes": ("/a b/",)},
        {"servers": RASA, "probe_path": "health"},
    ],
)
def test_what_would_write_a_broken_or_wider_config_is_refused(frontend: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Frontend("rasa", ":5005", **frontend)  # type: ignore[arg-type]
