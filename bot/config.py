"""Settings from the environment. The only module that reads `KEYMEDIC_*` variables (and the port variables).

Everything has an embedded default for a local run (`make run`): SQLite under `var/`, the exchange sandbox on
`SANDBOX_PORT`, ports from DESIGN §2. Values are read when asked for, not at import, so tests can set the
environment per test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "load_settings", "exchange_base_url", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """What a KeyMedic process needs to know about where it runs."""

    rasa_port: int
    actions_port: int
    web_port: int
    sandbox_port: int
    var_dir: Path
    # May carry a PostgreSQL password, so it stays out of repr (a logged Settings must not leak it).
    database_url: str = field(repr=False)
    # Total time one live diagnosis may take. Rasa waits up to 5 minutes for an action, but the user is
    # waiting in a chat and Rasa holds the conversation lock meanwhile, so the answer must come in seconds:
    # 8 s leaves room for two round trips to a slow exchange (a gate call, then the permission/history calls
    # together) and still lets the bot answer within ~10 s.
    diagnosis_deadline_s: float
    # Latency the sandbox adds to every response, for benchmarks and the "slow" scenario.
    sandbox_latency_s: float
    # Extra latency of the sandbox's `slow` scenario keys (on top of sandbox_latency_s).
    sandbox_slow_latency_s: float = 3.0
    # At most this many live diagnoses per user and exchange (and per key) in a sliding window: KeyMedic is no
    # oracle for stolen keys and never gets a user's key locked out by repeated attempts.
    diagnosis_rate_limit: int = 5
    diagnosis_rate_window_s: float = 600.0
    # `KEYMEDIC_ENCRYPTION_KEYS`: "kid1:base64key,kid2:base64key", first = current (docs/store.md).
    # Empty means a local run: the key file under var/keys/ is used (and created). Kept out of repr so a
    # logged Settings never shows a key.
    encryption_keys: str = field(default="", repr=False)
    # `KEYMEDIC_JOBS_URL`: `redis://…` for RedisHuey; empty means SqliteHuey on var/jobs.db (local run).
    jobs_url: str = field(default="", repr=False)
    # `KEYMEDIC_WEB_PUBLIC_URL`: where users reach the web app (the credential form's links). Empty means a
    # local run: http://127.0.0.1:WEB_PORT (`web_base_url`).
    web_public_url: str = ""
    # A resync is a long background job (thousands of pages for a big wallet), so it has no overall deadline;
    # each API call, with its retries and back-off, must finish within this many seconds (docs/store.md
    # "History adapters"). Generous next to a diagnosis's 8 s total: a slow page should not fail a sync.
    sync_request_deadline_s: float = 60.0
    # How many history rows each of the sandbox's history-bearing keys serves (generated lazily, so 100,000
    # costs no memory; docs/sandbox.md "History").
    sandbox_history_size: int = 40

    @property
    def web_base_url(self) -> str:
        """The web app's address as users reach it, without a trailing slash."""
        return (self.web_public_url or f"http://127.0.0.1:{self.web_port}").rstrip("/")


def load_settings() -> Settings:
    """Read the settings from the environment, with the local-run defaults."""
    var_dir = Path(os.environ.get("KEYMEDIC_VAR_DIR", "") or PROJECT_ROOT / "var")
    return Settings(
        rasa_port=_int("RASA_PORT", 5005),
        actions_port=_int("ACTIONS_PORT", 5055),
        web_port=_int("WEB_PORT", 8080),
        sandbox_port=_int("SANDBOX_PORT", 8765),
        var_dir=var_dir,
        database_url=os.environ.get("KEYMEDIC_DATABASE_URL", "") or f"sqlite:///{var_dir / 'keymedic.db'}",
        diagnosis_deadline_s=_float("KEYMEDIC_DIAGNOSIS_DEADLINE", 8.0),
        sandbox_latency_s=_float("KEYMEDIC_SANDBOX_LATENCY", 0.0),
        sandbox_slow_latency_s=_float("KEYMEDIC_SANDBOX_SLOW_LATENCY", 3.0),
        diagnosis_rate_limit=_int("KEYMEDIC_DIAGNOSIS_RATE_LIMIT", 5),
        diagnosis_rate_window_s=_float("KEYMEDIC_DIAGNOSIS_RATE_WINDOW", 600.0),
        encryption_keys=os.environ.get("KEYMEDIC_ENCRYPTION_KEYS", "").strip(),
        jobs_url=os.environ.get("KEYMEDIC_JOBS_URL", "").strip(),
        web_public_url=os.environ.get("KEYMEDIC_WEB_PUBLIC_URL", "").strip(),
        sync_request_deadline_s=_float("KEYMEDIC_SYNC_REQUEST_DEADLINE", 60.0),
        sandbox_history_size=_int("KEYMEDIC_SANDBOX_HISTORY_SIZE", 40),
    )


def exchange_base_url(exchange: str, default: str) -> str:
    """An exchange's API base URL: `KEYMEDIC_<EXCHANGE>_URL` when set (sandbox, tests), else `default`."""
    override = os.environ.get(f"KEYMEDIC_{exchange.upper()}_URL", "").strip()
    return override.rstrip("/") if override else default
