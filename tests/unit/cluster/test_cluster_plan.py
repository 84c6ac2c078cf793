"""What a cluster is made of: stores, processes, environment, the endpoints file Rasa reads (no sockets)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.cluster.stores import DEFAULT_DATABASE_URL, lock_store_environment, resolve_stores
from bot.cluster.topology import ENDPOINTS_FILE, ClusterOptions, cluster_environment, cluster_services
from bot.config import PROJECT_ROOT, Settings, load_settings

PG = "postgresql+psycopg2://km:s3cret@db.internal:5433/keymedic"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("KEYMEDIC_DATABASE_URL", "KEYMEDIC_JOBS_URL", "KEYMEDIC_REDIS_URL", "KEYMEDIC_TRACKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYMEDIC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("KEYMEDIC_AGENT_TOKEN", "agent-token-for-tests")
    return replace(load_settings(), rasa_port=7000, actions_port=7100, web_port=7200, sandbox_port=7300)


def test_a_local_run_becomes_the_default_postgres_and_redis(settings: Settings) -> None:
    stores = resolve_stores(settings)
    assert stores.database_url == DEFAULT_DATABASE_URL
    assert stores.tracker_url == DEFAULT_DATABASE_URL + "_tracker"
    assert stores.redis_url == stores.jobs_url == stores.socketio_redis_url == "redis://127.0.0.1:6379/0"
    assert "s3cret" not in repr(resolve_stores(replace(settings, database_url=PG)))


def test_the_tracker_store_defaults_to_its_own_database_on_the_same_server(settings: Settings) -> None:
    stores = resolve_stores(replace(settings, database_url=PG))
    assert stores.tracker_url == "postgresql+psycopg2://km:s3cret@db.internal:5433/keymedic_tracker"
    assert "s3cret" not in stores.describe()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"database_url": "sqlite:////srv/keymedic.db"}, "PostgreSQL"),
        ({"database_url": PG, "tracker_url": PG}, "own database"),
        ({"database_url": PG, "tracker_url": "sqlite:///t.db"}, "KEYMEDIC_TRACKER_URL"),
        ({"redis_url": "http://127.0.0.1:6379"}, "KEYMEDIC_REDIS_URL"),
        ({"redis_url": "redis://127.0.0.1:6379/cache"}, "a number"),
        ({"jobs_url": "sqlite:///jobs.db"}, "KEYMEDIC_JOBS_URL"),
    ],
)
def test_stores_a_cluster_cannot_share_are_refused_with_what_to_change(
    settings: Settings, change: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_stores(replace(settings, **change))


def test_the_lock_store_gets_the_redis_url_apart() -> None:
    assert lock_store_environment("redis://:p%40ss@cache:6380/3") == {
        "KEYMEDIC_LOCK_REDIS_HOST": "cache",
        "KEYMEDIC_LOCK_REDIS_PORT": "6380",
        "KEYMEDIC_LOCK_REDIS_DB": "3",
        "KEYMEDIC_LOCK_REDIS_PASSWORD": "p@ss",
    }
    assert lock_store_environment("redis://127.0.0.1")["KEYMEDIC_LOCK_REDIS_DB"] == "0"


def test_the_redis_namespace_must_suit_rasas_key_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYMEDIC_REDIS_NAMESPACE", "key-medic")
    with pytest.raises(ValueError, match="letters and digits"):
        load_settings()
    monkeypatch.setenv("KEYMEDIC_REDIS_NAMESPACE", "prod2")
    assert load_settings().redis_namespace == "prod2"


def test_the_processes_of_a_cluster(settings: Settings) -> None:
    options = ClusterOptions(replicas=3, action_workers=2, job_workers=2)
    services = cluster_services(settings, Path("models/m.tar.gz"), options)
    names = [s.name for s in services]
    assert names == [
        "sandbox",
        "actions-1",
        "actions-2",
        "actions-balancer",
        "worker-1",
        "worker-2",
        "web",
        "rasa-1",
        "rasa-2",
        "rasa-3",
        "balancer",
    ]
    by_name = {s.name: s for s in services}
    for i, port in enumerate((7101, 7102), start=1):
        argv = by_name[f"actions-{i}"].argv
        assert argv[argv.index("--port") + 1] == str(port)
    # The balancers are HAProxy, on configurations written next to the logs.
    actions_balancer = by_name["actions-balancer"].argv
    assert actions_balancer[-3:] == ["-f", str(settings.var_dir / "haproxy" / "actions.cfg"), "-db"]
    actions_config = (settings.var_dir / "haproxy" / "actions.cfg").read_text()
    assert "bind 127.0.0.1:7100\n" in actions_config
    assert "option httpchk GET /health/live" in actions_config
    assert servers_in(actions_config) == ["actions-1 127.0.0.1:7101", "actions-2 127.0.0.1:7102"]
    assert "--no-periodic" not in by_name["worker-1"].argv
    assert by_name["worker-2"].argv[-1] == "--no-periodic"
    # Each worker beats into its own file, the one its supervisor reads (bot/worker_liveness.py).
    for name in ("worker-1", "worker-2"):
        worker = by_name[name]
        assert worker.heartbeat == settings.var_dir / "run" / f"{name}.heartbeat"
        assert worker.argv[worker.argv.index("--heartbeat") + 1] == str(worker.heartbeat)
    for i, port in enumerate((7001, 7002, 7003), start=1):
        argv = by_name[f"rasa-{i}"].argv
        assert argv[argv.index("--port") + 1] == str(port)
        assert argv[argv.index("--endpoints") + 1] == ENDPOINTS_FILE
    # The replicas load their models together; the balancer waits for all of them.
    assert [by_name[f"rasa-{i}"].wait for i in (1, 2, 3)] == [False, False, True]
    balancer = by_name["balancer"].argv
    assert balancer[-3:] == ["-f", str(settings.var_dir / "haproxy" / "rasa.cfg"), "-db"]
    assert by_name["balancer"].url == "http://127.0.0.1:7000"
    rasa_config = (settings.var_dir / "haproxy" / "rasa.cfg").read_text()
    assert "bind 127.0.0.1:7000\n" in rasa_config
    replicas = [f"rasa-{i} 127.0.0.1:700{i}" for i in (1, 2, 3)]
    # Twice: round-robin for HTTP, sticky for socket.io.
    assert servers_in(rasa_config) == replicas + [f"{r} cookie {r.split()[0]}" for r in replicas]


def servers_in(config: str) -> list[str]:
    return [line.split("server ", 1)[1] for line in config.splitlines() if line.startswith("    server ")]


@pytest.mark.parametrize(
    "options",
    [
        {"replicas": 0},
        {"replicas": 2, "ports": (8001,)},
        {"lock_lifetime_s": 2},
        {"action_workers": 2, "action_ports": (8001,)},
    ],
)
def test_impossible_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClusterOptions(**options)  # type: ignore[arg-type]


def test_replica_ports_may_not_collide(settings: Settings) -> None:
    with pytest.raises(ValueError, match="collide"):
        cluster_services(settings, Path("m"), ClusterOptions(replicas=2, ports=(7001, 7100)))
    with pytest.raises(ValueError, match="collide"):
        cluster_services(settings, Path("m"), ClusterOptions(replicas=2, action_ports=(7001, 7101)))


def test_the_environment_points_every_child_at_the_shared_stores(settings: Settings) -> None:
    stores = resolve_stores(replace(settings, database_url=PG, redis_url="redis://cache:6379/4"))
    env = cluster_environment(settings, stores, ClusterOptions(lock_lifetime_s=20), base={"PATH": "/bin"})
    assert env["KEYMEDIC_DATABASE_URL"] == PG
    assert env["KEYMEDIC_TRACKER_URL"] == stores.tracker_url
    assert env["KEYMEDIC_JOBS_URL"] == env["KEYMEDIC_SOCKETIO_REDIS_URL"] == "redis://cache:6379/4"
    assert env["KEYMEDIC_LOCK_REDIS_HOST"] == "cache" and env["KEYMEDIC_LOCK_REDIS_DB"] == "4"
    assert env["TICKET_LOCK_LIFETIME"] == "20"
    assert env["RASA_PORT"] == "7000"  # the balancer's port: the web app relays agent replies through it
    assert "KEYMEDIC_TRACKER_DB" not in env


def test_rasa_reads_the_cluster_endpoints_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    stores = resolve_stores(replace(settings, database_url=PG, redis_url="redis://:pw@cache:6380/5"))
    env = cluster_environment(settings, stores, ClusterOptions(), base={})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = str(PROJECT_ROOT / ENDPOINTS_FILE)
    tracker = read_endpoint_config(path, "tracker_store")
    locks = read_endpoint_config(path, "lock_store")
    action = read_endpoint_config(path, "action_endpoint")
    assert tracker is not None and locks is not None and action is not None
    assert tracker.type == "rasa_plugins.tracker_store.WindowedSQLTrackerStore"
    assert tracker.url == "postgresql+psycopg2://km:s3cret@db.internal:5433/keymedic_tracker"
    assert locks.type == "rasa_plugins.lock_store.RequeueingRedisLockStore" and locks.url == "cache"
    assert locks.kwargs == {
        "port": "6380",
        "db": "5",
        "password": "pw",
        "key_prefix": "keymedic",
        "socket_timeout": 2,  # a hung Redis fails a turn in seconds (docs/reliability.md)
    }
    assert action.url == "http://127.0.0.1:7100/webhook"
