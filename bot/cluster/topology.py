"""The processes of a local cluster and their environment (docs/deploy.md, "A cluster on one machine").

Built from `bot.launcher.local_services`, so a cluster runs exactly the commands a local run does, changed
only where several of a kind share state:

| service | how many | what changes |
|---|---|---|
| sandbox, web | 1 | nothing |
| actions-1 … actions-M | `action_workers` | own port each (the ports after `ACTIONS_PORT`) |
| actions-balancer | 1 | listens on `ACTIONS_PORT`, round-robin over the action servers |
| worker | `job_workers` | Huey on Redis; only the first schedules periodic jobs (`--no-periodic`) |
| rasa-1 … rasa-N | `replicas` | own port; `endpoints.cluster.yml` (PostgreSQL tracker, Redis locks) |
| balancer | 1 | listens on `RASA_PORT`, where a single Rasa would: users and the web app notice nothing |
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Final

from bot.cluster.stores import ClusterStores, lock_store_environment
from bot.config import Settings
from bot.launcher import Service, child_environment, http_ok, local_services, rasa_token
from bot.observability.health import rasa_model_loaded

__all__ = ["ClusterOptions", "ENDPOINTS_FILE", "cluster_environment", "cluster_services", "replica_ports"]

ENDPOINTS_FILE: Final = "endpoints.cluster.yml"


@dataclass(frozen=True)
class ClusterOptions:
    """How many of each; the replica ports default to the ports right after `RASA_PORT`."""

    replicas: int = 2
    action_workers: int = 2
    job_workers: int = 2
    # Rasa's TICKET_LOCK_LIFETIME: how long a replica that died holding a conversation's lock blocks that
    # conversation. It must outlast the slowest turn (a live key test has an 8 s deadline), or two replicas
    # could answer one conversation at once; Rasa's default is 60 s.
    lock_lifetime_s: int = 60
    ports: tuple[int, ...] = ()
    action_ports: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.action_workers < 1 or self.job_workers < 1:
            raise ValueError("a cluster needs at least one replica, one action worker and one job worker")
        if self.ports and len(self.ports) != self.replicas:
            raise ValueError(f"{self.replicas} replicas need {self.replicas} ports, got {len(self.ports)}")
        if self.action_ports and len(self.action_ports) != self.action_workers:
            raise ValueError(
                f"{self.action_workers} action servers need as many ports, got {self.action_ports}"
            )
        if self.lock_lifetime_s < 10:
            raise ValueError("the lock lifetime must outlast a turn: at least 10 s")


def replica_ports(settings: Settings, options: ClusterOptions) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(Rasa replica ports, action server ports): as given, else the ports right after RASA_PORT and
    ACTIONS_PORT."""
    rasa = options.ports or tuple(settings.rasa_port + 1 + i for i in range(options.replicas))
    actions = options.action_ports or tuple(
        settings.actions_port + 1 + i for i in range(options.action_workers)
    )
    taken = [settings.rasa_port, settings.actions_port, settings.web_port, settings.sandbox_port]
    everything = [*taken, *rasa, *actions]
    if len(set(everything)) != len(everything):
        raise ValueError(f"ports collide: replicas {rasa}, action servers {actions}, the others {taken}")
    return rasa, actions


def cluster_environment(
    settings: Settings, stores: ClusterStores, options: ClusterOptions, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every child's environment: a local run's, pointed at the shared stores."""
    env = child_environment(
        replace(settings, database_url=stores.database_url, jobs_url=stores.jobs_url), base
    )
    env.update(
        KEYMEDIC_DATABASE_URL=stores.database_url,
        KEYMEDIC_JOBS_URL=stores.jobs_url,
        KEYMEDIC_TRACKER_URL=stores.tracker_url,
        KEYMEDIC_SOCKETIO_REDIS_URL=stores.socketio_redis_url,
        KEYMEDIC_REDIS_URL=stores.redis_url,
        KEYMEDIC_REDIS_NAMESPACE=stores.namespace,
        TICKET_LOCK_LIFETIME=str(options.lock_lifetime_s),
        # Rasa calls the action servers through their balancer (a Service's address in Kubernetes).
        KEYMEDIC_ACTION_ENDPOINT_URL=f"http://127.0.0.1:{settings.actions_port}/webhook",
        **lock_store_environment(stores.redis_url),
    )
    # A local run's SQLite tracker file means nothing here; without it a stray endpoints.yml fails loudly.
    env.pop("KEYMEDIC_TRACKER_DB", None)
    return env


def _with_option(argv: list[str], flag: str, value: str) -> list[str]:
    at = argv.index(flag)  # ValueError: local_services changed shape; this must be updated with it
    return [*argv[: at + 1], value, *argv[at + 2 :]]


def cluster_services(settings: Settings, model: Path, options: ClusterOptions) -> list[Service]:
    """The processes of a cluster, in start order (the replicas load their models at the same time)."""
    local = {service.name: service for service in local_services(settings, model)}
    missing = {"sandbox", "actions", "worker", "web", "rasa"} - local.keys()
    if missing:
        raise RuntimeError(f"bot.launcher.local_services no longer has {sorted(missing)}")
    rasa_ports, action_ports = replica_ports(settings, options)
    keymedic = str(Path(sys.executable).parent / "keymedic")
    services = [local["sandbox"]]
    actions = local["actions"]
    for i, port in enumerate(action_ports):
        services.append(
            replace(
                actions,
                name=f"actions-{i + 1}",
                argv=_with_option(actions.argv, "--port", str(port)),
                ready=http_ok(f"http://127.0.0.1:{port}/health/ready"),
                url=f"http://127.0.0.1:{port}",
                wait=i == len(action_ports) - 1,
            )
        )
    services.append(
        _balancer(
            "actions-balancer", keymedic, settings.actions_port, "actions", action_ports, "/health/live"
        )
    )
    worker = local["worker"]
    for i in range(options.job_workers):
        # Each consumer could schedule the every-minute sweep; one doing it is enough.
        argv = worker.argv if i == 0 else [*worker.argv, "--no-periodic"]
        services.append(replace(worker, name=f"worker-{i + 1}", argv=argv, url="Huey on Redis"))
    services.append(local["web"])
    rasa = local["rasa"]
    for i, port in enumerate(rasa_ports):
        argv = _with_option(_with_option(rasa.argv, "--port", str(port)), "--endpoints", ENDPOINTS_FILE)
        services.append(
            replace(
                rasa,
                name=f"rasa-{i + 1}",
                argv=argv,
                ready=partial(rasa_model_loaded, f"http://127.0.0.1:{port}", rasa_token(settings)),
                url=f"http://127.0.0.1:{port}",
                wait=i == len(rasa_ports) - 1,
            )
        )
    services.append(_balancer("balancer", keymedic, settings.rasa_port, "rasa", rasa_ports, "/"))
    return services


def _balancer(name: str, keymedic: str, port: int, kind: str, ports: tuple[int, ...], probe: str) -> Service:
    backends = [f"--backend={kind}-{i + 1}=http://127.0.0.1:{p}" for i, p in enumerate(ports)]
    return Service(
        name=name,
        argv=[
            keymedic,
            "balancer",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--probe-path",
            probe,
            *backends,
        ],
        ready=http_ok(f"http://127.0.0.1:{port}/health/ready"),
        url=f"http://127.0.0.1:{port}",
    )
