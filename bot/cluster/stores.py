"""Where a cluster keeps its shared state (docs/deploy.md): which databases and which Redis.

Replicas share nothing in memory, so everything they must agree on lives in a server every one reaches:

| what | where | setting (default) |
|---|---|---|
| KeyMedic's database | PostgreSQL | `KEYMEDIC_DATABASE_URL` (`…@127.0.0.1:5432/keymedic_cluster`) |
| Rasa's tracker store | PostgreSQL | `KEYMEDIC_TRACKER_URL` (the same server, database `<name>_tracker`) |
| Rasa's lock store | Redis | `KEYMEDIC_REDIS_URL` (`redis://127.0.0.1:6379/0`), keys prefixed |
| the job queue (Huey) | Redis | `KEYMEDIC_JOBS_URL` (the Redis above) |
| socket.io rooms | Redis pub/sub | `KEYMEDIC_SOCKETIO_REDIS_URL` (the Redis above) |

A SQLite file cannot be shared by processes on several machines, so a cluster refuses one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from bot.config import Settings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "ClusterStores",
    "resolve_stores",
    "ensure_postgres_database",
    "lock_store_environment",
]

DEFAULT_DATABASE_URL: Final = "postgresql+psycopg2://postgres@127.0.0.1:5432/keymedic_cluster"
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
_REDIS_SCHEMES: Final = ("redis",)  # rediss:// needs `use_ssl: true` in the lock store (docs/deploy.md)


@dataclass(frozen=True)
class ClusterStores:
    """The resolved addresses. They may carry passwords, so none of them is in repr."""

    database_url: str = field(repr=False)
    tracker_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    jobs_url: str = field(repr=False)
    socketio_redis_url: str = field(repr=False)
    namespace: str = "keymedic"

    def describe(self) -> str:
        """One line for the terminal, with passwords masked."""
        return (
            f"database {_masked(self.database_url)}, tracker store {_masked(self.tracker_url)}, "
            f"lock store and jobs {_masked(self.redis_url)} (namespace {self.namespace})"
        )


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _is_default_sqlite(settings: Settings) -> bool:
    return settings.database_url == f"sqlite:///{settings.var_dir / 'keymedic.db'}"


def resolve_stores(settings: Settings) -> ClusterStores:
    """The cluster's stores from `settings`; ValueError says what to change when one cannot be shared."""
    database_url = DEFAULT_DATABASE_URL if _is_default_sqlite(settings) else settings.database_url
    database = make_url(database_url)
    if database.get_backend_name() != "postgresql" or not database.database:
        raise ValueError(
            "several replicas need a PostgreSQL database: set KEYMEDIC_DATABASE_URL to "
            "postgresql+psycopg2://user:password@host:port/database (or leave it unset for "
            f"{_masked(DEFAULT_DATABASE_URL)})"
        )
    tracker_url = settings.tracker_url or database.set(
        database=f"{database.database}_tracker"
    ).render_as_string(hide_password=False)
    tracker = make_url(tracker_url)
    if tracker.get_backend_name() != "postgresql" or not tracker.database:
        raise ValueError("KEYMEDIC_TRACKER_URL must be a PostgreSQL URL with a database name")
    if tracker.database == database.database and (tracker.host, tracker.port) == (
        database.host,
        database.port,
    ):
        # Rasa creates its own `events` table next to whatever is there; keep it out of Alembic's database.
        raise ValueError("the tracker store needs its own database: KEYMEDIC_TRACKER_URL names KeyMedic's")
    redis_url = settings.redis_url or DEFAULT_REDIS_URL
    _check_redis(redis_url, "KEYMEDIC_REDIS_URL")
    jobs_url = settings.jobs_url or redis_url
    socketio_url = settings.socketio_redis_url or redis_url
    _check_redis(socketio_url, "KEYMEDIC_SOCKETIO_REDIS_URL")
    if not jobs_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("several job workers need the Redis job queue: KEYMEDIC_JOBS_URL must be redis://…")
    return ClusterStores(
        database_url=database_url,
        tracker_url=tracker_url,
        redis_url=redis_url,
        jobs_url=jobs_url,
        socketio_redis_url=socketio_url,
        namespace=settings.redis_namespace,
    )


def _check_redis(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES or not parts.hostname:
        raise ValueError(f"{name} must be redis://[:password@]host[:port][/db], got a {parts.scheme!r} URL")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"{name}: the database is a number (redis://host:6379/2)")


def lock_store_environment(redis_url: str) -> dict[str, str]:
    """The variables of endpoints.cluster.yml's `lock_store` (host, port, db and password apart)."""
    parts = urlsplit(redis_url)
    return {
        "KEYMEDIC_LOCK_REDIS_HOST": parts.hostname or "127.0.0.1",
        "KEYMEDIC_LOCK_REDIS_PORT": str(parts.port or 6379),
        "KEYMEDIC_LOCK_REDIS_DB": parts.path.strip("/") or "0",
        "KEYMEDIC_LOCK_REDIS_PASSWORD": unquote(parts.password or ""),
    }


def ensure_postgres_database(url: str) -> bool:
    """Create the database `url` names when it does not exist (connecting to the server's `postgres`
    database); returns whether it created it. Safe when several launchers race: a lost race is fine."""
    target = make_url(url)
    name = target.database
    assert name, "the URL names no database"
    admin = create_engine(
        target.set(database="postgres"), poolclass=pool.NullPool, future=True, isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(name)
            try:
                connection.execute(text(f"CREATE DATABASE {quoted}"))
            except Exception:
                # Another launcher created it between our check and our CREATE: that is what we wanted.
                if connection.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                ).first():
                    return False
                raise
            return True
    finally:
        admin.dispose()
