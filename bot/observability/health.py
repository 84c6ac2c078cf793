"""Liveness and readiness, the same way in every KeyMedic process (docs/operating.md "Health").

- **live**: the process answers HTTP (its event loop is not stuck). Kubernetes restarts it when this fails.
- **ready**: it can do its job now. For the web app and the action server that means the KeyMedic database
  answers `SELECT 1` (the model plays no part there: actions never load it); for Rasa, that a model is loaded
  (`rasa_model_loaded`). Kubernetes sends no traffic to a replica that is not ready.

The answers are small JSON documents with the failing check named, never a connection string or an error
message (either could carry a password).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: the launcher (and so `keymedic --help`) imports this module
    from bot.store.db import Database

__all__ = ["live", "database_check", "ready", "rasa_model_loaded"]


def live() -> dict[str, Any]:
    """The liveness answer (it only has to be produced)."""
    return {"status": "ok"}


def database_check(database: Database) -> dict[str, Any]:
    """Whether the database answers, and how fast; the error's type only when it does not."""
    from sqlalchemy import text

    started = time.perf_counter()
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "latency_ms": round(1000 * (time.perf_counter() - started), 1)}


def ready(database: Database) -> tuple[bool, dict[str, Any]]:
    """(ready?, the readiness answer)."""
    check = database_check(database)
    return bool(check["ok"]), {
        "status": "ok" if check["ok"] else "unavailable",
        "checks": {"database": check},
    }


def rasa_model_loaded(base_url: str, token: str = "", *, timeout_s: float = 1.0) -> bool:
    """Rasa's readiness: `GET /status` answers with a loaded model (`model_file` set).

    `/status` needs the server's `--auth-token` when one is set (sent as the `token` query parameter); Rasa's
    `GET /` only proves the process is up, which is its liveness.
    """
    import httpx

    params = {"token": token} if token else None
    try:
        # trust_env=False: a proxy configured in the environment must never see requests to our own servers.
        response = httpx.get(f"{base_url}/status", params=params, timeout=timeout_s, trust_env=False)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("model_file"))


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.observability.health [RASA_URL]`: exit 0 when Rasa has loaded its model, else 1.

    The readiness probe of a deployment (compose, Kubernetes): `/status` takes Rasa's token, which a probe
    reads from KEYMEDIC_RASA_TOKEN here instead of carrying it in a manifest or on a command line.
    """
    import sys

    from bot.config import load_settings

    args = sys.argv[1:] if argv is None else argv
    base_url = args[0] if args else "http://127.0.0.1:5005"
    return 0 if rasa_model_loaded(base_url.rstrip("/"), load_settings().rasa_token, timeout_s=3.0) else 1


if __name__ == "__main__":
    raise SystemExit(main())
