"""`keymedic cluster` (`make run-cluster`): several Rasa replicas behind HAProxy, on PostgreSQL and Redis.

Like `keymedic run` (same logs under var/logs/, same Ctrl-C), with the shared stores of `bot.cluster.stores`:
it creates the KeyMedic and tracker databases when missing, migrates KeyMedic's, loads the demo user into an
empty one, then starts the processes of `bot.cluster.topology`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from sqlalchemy.engine import make_url

from bot.cluster import haproxy
from bot.cluster.stores import ensure_postgres_database, resolve_stores
from bot.cluster.topology import ClusterOptions, cluster_environment, cluster_services, replica_ports
from bot.config import load_settings
from bot.demo import prepare_database
from bot.launcher import supervise
from bot.production import refuse_to_start
from bot.training import ensure_model

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=2, help="Rasa replicas (default 2)")
    parser.add_argument(
        "--replica-ports",
        default="",
        help="comma-separated ports of the replicas (default: the ports right after RASA_PORT)",
    )
    parser.add_argument(
        "--action-servers",
        type=int,
        default=2,
        help="action server processes, behind their own HAProxy (default 2)",
    )
    parser.add_argument("--job-workers", type=int, default=2, help="job worker processes (default 2)")
    parser.add_argument(
        "--lock-lifetime",
        type=int,
        default=60,
        help="seconds a dead replica's conversation lock lasts (Rasa's TICKET_LOCK_LIFETIME, default 60)",
    )


def run(args: argparse.Namespace) -> int:
    """Start the cluster until Ctrl-C."""
    settings = load_settings()
    if haproxy.binary() is None:
        print("keymedic cluster: HAProxy is not installed; run scripts/ensure-services", flush=True)
        return 2
    # Like `keymedic run`, a cluster on one machine runs the exchange sandbox and the demo sign-in.
    if refuse_to_start(
        settings, "keymedic cluster", ["keymedic cluster starts a local run (sandbox, demo sign-in)"]
    ):
        return 1
    try:
        ports = tuple(int(p) for p in args.replica_ports.split(",") if p.strip())
        options = ClusterOptions(
            replicas=args.replicas,
            action_workers=args.action_servers,
            job_workers=args.job_workers,
            lock_lifetime_s=args.lock_lifetime,
            ports=ports,
        )
        replica_ports(settings, options)  # colliding ports are refused before anything starts
        stores = resolve_stores(settings)
    except ValueError as error:
        print(f"keymedic cluster: {error}", flush=True)
        return 2
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    model = ensure_model()
    for url in (stores.database_url, stores.tracker_url):
        if ensure_postgres_database(url):
            print(f"database: created {make_url(url).database}", flush=True)
    cluster_settings = replace(
        settings, database_url=stores.database_url, jobs_url=stores.jobs_url, tracker_url=stores.tracker_url
    )
    if prepare_database(cluster_settings):
        print("database: migrated and loaded the demo user `demo` (README, 'Demo data')", flush=True)
    print(f"cluster: {stores.describe()}", flush=True)
    banner = (
        f"KeyMedic is up with {options.replicas} Rasa replicas behind http://127.0.0.1:{settings.rasa_port} "
        f"(the REST channel and socket.io as with `keymedic run`; Ctrl-C stops everything)."
    )
    env = cluster_environment(settings, stores, options)
    services = cluster_services(cluster_settings, model, options)
    return supervise(services, env, settings.var_dir / "logs", banner)
