"""Settings from the environment. The only module that reads `KEYMEDIC_*` variables (and the port variables).

Everything has an embedded default for a local run (`make run`): SQLite under `var/`, the exchange sandbox on
`SANDBOX_PORT`, ports from DESIGN §2. Values are read when asked for, not at import, so tests can set the
environment per test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.exchange_ids import EXCHANGE_IDS

__all__ = ["Settings", "load_settings", "exchange_base_url", "PROJECT_ROOT", "MODES"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# `KEYMEDIC_ENV`: `local` (make run, the tests) or `production` (bot/production.py says what it refuses).
MODES = ("local", "production")


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


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


def _namespace(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isalnum():
        raise ValueError(f"{name} must be letters and digits only, got {raw!r}")
    return raw


def _origins(name: str) -> tuple[str, ...]:
    # An origin is scheme://host[:port], exactly as a browser sends it: no path, no trailing slash.
    origins = []
    for raw in os.environ.get(name, "").split(","):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ValueError(f"{name} must list origins like https://app.example.com, got {origin!r}")
        origins.append(origin)
    return tuple(origins)


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
    # Per KeyMedic user over every exchange, in the same window (`KEYMEDIC_DIAGNOSIS_USER_LIMIT`).
    diagnosis_user_limit: int = 10
    # The budget of one exchange key, whoever submits it: exchanges lock a key out after repeated failed
    # attempts (`KEYMEDIC_DIAGNOSIS_KEY_LIMIT`, `KEYMEDIC_DIAGNOSIS_KEY_WINDOW`; bot/diagnosis/limits.py).
    diagnosis_key_limit: int = 5
    diagnosis_key_window_s: float = 600.0
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
    # -- the chat widget's socket.io channel (docs/channels.md) --
    # `KEYMEDIC_WIDGET_JWT_SECRET`: the HS256 key the host app signs the widget's JWTs with. Empty means the
    # socket.io channel refuses every connection. Kept out of repr.
    widget_jwt_secret: str = field(default="", repr=False)
    # `KEYMEDIC_WIDGET_JWT_AUDIENCE`: the `aud` every widget JWT must carry, so a token the host app mints for
    # another service cannot open a chat.
    widget_jwt_audience: str = "keymedic-widget"
    # `KEYMEDIC_WIDGET_ORIGINS`: comma-separated origins (`https://app.example.com`) whose pages may open the
    # widget's socket. Empty means a local run: the web app's own origin (`widget_allowed_origins`).
    widget_origins: tuple[str, ...] = ()
    # `KEYMEDIC_WIDGET_SOCKET_URL`: where browsers reach Rasa's socket.io endpoint (the widget connects
    # there). Empty means a local run: http://127.0.0.1:RASA_PORT (`widget_socket_base_url`).
    widget_socket_url: str = ""
    # `KEYMEDIC_WIDGET_DEMO_SIGNIN=1`: the web app mints widget JWTs for the demo user (`keymedic run` sets
    # it, docs/widget.md). Honoured only while the web app's public address is loopback, so a production
    # config (a real KEYMEDIC_WEB_PUBLIC_URL) never serves it even if the flag leaks in.
    widget_demo_signin: bool = False
    # -- hand-off to support (docs/handoff.md) --
    # `KEYMEDIC_RASA_URL`: Rasa's HTTP API as the web app reaches it (agent replies, resume). Empty means a
    # local run: http://127.0.0.1:RASA_PORT (`rasa_base_url`).
    rasa_url: str = ""
    # `KEYMEDIC_RASA_TOKEN`: Rasa's `--auth-token`, sent as its `token` query parameter. Out of repr.
    rasa_token: str = field(default="", repr=False)
    # `KEYMEDIC_AGENT_TOKEN`: the bearer token of the agent API. Empty switches the agent API off (503).
    agent_token: str = field(default="", repr=False)
    # `KEYMEDIC_SUPPORT_WEBHOOK_URL`: where ticket notifications go. A Slack incoming-webhook URL is itself a
    # credential, so it stays out of repr (and out of every logged error). Empty: notifications wait in the
    # outbox until one is configured.
    support_webhook_url: str = field(default="", repr=False)
    # `KEYMEDIC_SUPPORT_WEBHOOK_KIND`: `slack` (Block Kit message) or `json` (KeyMedic's own JSON document).
    support_webhook_kind: str = "json"
    # `KEYMEDIC_SUPPORT_WEBHOOK_SECRET`: when set, JSON deliveries carry an HMAC-SHA256 signature of the body.
    support_webhook_secret: str = field(default="", repr=False)
    # `KEYMEDIC_SUPPORT_WEBHOOK_TIMEOUT`: seconds one delivery attempt may take.
    support_webhook_timeout_s: float = 10.0
    # Outbox retries: the n-th failed attempt waits min(cap, base * 2**(n-1)) seconds
    # (`KEYMEDIC_OUTBOX_RETRY_BASE`, `KEYMEDIC_OUTBOX_RETRY_CAP`). A worker's claim on a row lasts
    # `KEYMEDIC_OUTBOX_LEASE` seconds; a worker that dies mid-delivery frees the row when it lapses, so it
    # must be longer than one attempt (the webhook timeout).
    outbox_retry_base_s: float = 30.0
    outbox_retry_cap_s: float = 3600.0
    outbox_lease_s: float = 120.0
    # `KEYMEDIC_LOG_LEVEL`: debug, info, warning or error, for every process of a run (docs/operating.md).
    log_level: str = "info"
    # `KEYMEDIC_RASA_STANDBY` (default 1): `keymedic run` keeps a second Rasa loaded, not serving, that takes
    # over when the serving one dies; 0 saves its memory and a killed Rasa is then back after a whole start
    # (docs/reliability.md, "Rasa's start").
    rasa_standby: bool = True
    # -- Slack (docs/slack.md) --
    # `KEYMEDIC_SLACK_SIGNING_SECRET`: the app's signing secret; every request to the Slack webhook must carry
    # its HMAC. `KEYMEDIC_SLACK_BOT_TOKEN`: the bot token (`xoxb-…`) replies are posted with. Both unset: the
    # Slack channel is off (its webhook answers 404); one without the other: Rasa refuses to start.
    slack_signing_secret: str = field(default="", repr=False)
    slack_bot_token: str = field(default="", repr=False)
    # `KEYMEDIC_SLACK_API_URL`: Slack's Web API (tests point it at a local stand-in). Empty: slack_sdk's
    # default.
    slack_api_url: str = ""
    # `KEYMEDIC_SLACK_LINK_URL`: the host app's page where a signed-in user confirms linking their Slack
    # account, with `{token}` where the one-time token goes. Empty: KeyMedic's own page, /slack/link.
    slack_link_url: str = ""
    # The support channel (issue 16; docs/slack.md "The support channel"): a second Slack app, the support
    # team's, whose Request URLs are the web app's /slack/support/events and /slack/support/actions (a Slack
    # app has one events URL, and the user-facing app's is Rasa's). `KEYMEDIC_SLACK_SUPPORT_CHANNEL`: the
    # channel id (C…); `KEYMEDIC_SLACK_SUPPORT_BOT_TOKEN` (xoxb-…) and
    # `KEYMEDIC_SLACK_SUPPORT_SIGNING_SECRET`: that app's. All three set: notifications are posted there (not
    # to the webhook) and agents reply in each notification's thread and use its buttons.
    slack_support_channel: str = ""
    slack_support_bot_token: str = field(default="", repr=False)
    slack_support_signing_secret: str = field(default="", repr=False)

    @property
    def slack_support_enabled(self) -> bool:
        return bool(
            self.slack_support_channel and self.slack_support_bot_token and self.slack_support_signing_secret
        )

    # -- several replicas (`keymedic cluster`, docs/deploy.md) --
    # `KEYMEDIC_REDIS_URL`: the Redis a cluster shares (Rasa's lock store, and the default of the two below).
    # Empty: `keymedic cluster` uses redis://127.0.0.1:6379/0. URLs may carry a password: out of repr.
    redis_url: str = field(default="", repr=False)
    # `KEYMEDIC_REDIS_NAMESPACE`: names everything one deployment keeps in a shared Redis (the lock store's
    # key prefix, the job queue, the socket.io channel), so two deployments on one Redis never mix.
    # Letters and digits only: Rasa's lock store refuses any other key prefix.
    redis_namespace: str = "keymedic"
    # `KEYMEDIC_SOCKETIO_REDIS_URL`: when set, every Rasa replica's socket.io server shares its rooms through
    # this Redis (python-socketio's AsyncRedisManager), so a reply or an agent's message reaches the widget
    # whichever replica holds its socket. Empty: one replica, rooms in memory.
    socketio_redis_url: str = field(default="", repr=False)
    # `KEYMEDIC_TRACKER_URL`: the SQL tracker store of a cluster (a PostgreSQL URL). Empty: `keymedic cluster`
    # uses the KeyMedic database's server with the database name suffixed `_tracker`.
    tracker_url: str = field(default="", repr=False)
    # `KEYMEDIC_TRACKER_DB`: the SQLite tracker store file of a local run (endpoints.yml reads it too). Empty:
    # var/tracker.db. The report and the turn-latency metric read the store at `tracker_store_url`.
    tracker_db: str = ""
    # -- the mode and the internal doors (DESIGN §8, bot/production.py) --
    # `KEYMEDIC_ENV`: `local` (the default: `make run`, the tests) or `production`, where every process
    # refuses to start with a local convenience on or an internal door open.
    mode: str = "local"
    # `KEYMEDIC_ACTIONS_TOKEN`: the token Rasa sends the action server (endpoints.yml's `Authorization`
    # header); the action server refuses every action call without it. Out of repr.
    actions_token: str = field(default="", repr=False)
    # `KEYMEDIC_EXCHANGE_CA_BUNDLE`: a PEM file of the CAs exchange clients trust instead of the system's
    # (a TLS-inspecting egress proxy, or the tests' TLS sandbox). Empty: the system's trust store.
    exchange_ca_bundle: str = ""
    # Every `KEYMEDIC_<EXCHANGE>_URL` that is set, as (exchange, url), for the production checks.
    exchange_url_overrides: tuple[tuple[str, str], ...] = ()

    @property
    def production(self) -> bool:
        """Whether this process runs in production mode (`KEYMEDIC_ENV=production`)."""
        return self.mode == "production"

    @property
    def slack_link_template(self) -> str:
        """Where an unlinked Slack user is sent to link their account (`{token}` is filled in)."""
        return self.slack_link_url or f"{self.web_base_url}/slack/link?token={{token}}"

    @property
    def web_base_url(self) -> str:
        """The web app's address as users reach it, without a trailing slash."""
        return (self.web_public_url or f"http://127.0.0.1:{self.web_port}").rstrip("/")

    @property
    def widget_allowed_origins(self) -> tuple[str, ...]:
        """The origins the widget's socket accepts: `widget_origins`, else the web app's own origin."""
        if self.widget_origins:
            return self.widget_origins
        if self.web_public_url:
            parts = urlsplit(self.web_base_url)
            return (f"{parts.scheme}://{parts.netloc}",)
        return (f"http://127.0.0.1:{self.web_port}", f"http://localhost:{self.web_port}")

    @property
    def widget_socket_base_url(self) -> str:
        """Rasa's socket.io endpoint as browsers reach it, without a trailing slash."""
        return (self.widget_socket_url or f"http://127.0.0.1:{self.rasa_port}").rstrip("/")

    @property
    def tracker_store_url(self) -> str:
        """Rasa's SQL tracker store as an SQLAlchemy URL: `tracker_url`, else the local SQLite file."""
        return self.tracker_url or f"sqlite:///{self.tracker_db or self.var_dir / 'tracker.db'}"

    @property
    def rasa_base_url(self) -> str:
        """Rasa's HTTP API, without a trailing slash."""
        return (self.rasa_url or f"http://127.0.0.1:{self.rasa_port}").rstrip("/")


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
        diagnosis_user_limit=_int("KEYMEDIC_DIAGNOSIS_USER_LIMIT", 10),
        diagnosis_key_limit=_int("KEYMEDIC_DIAGNOSIS_KEY_LIMIT", 5),
        diagnosis_key_window_s=_float("KEYMEDIC_DIAGNOSIS_KEY_WINDOW", 600.0),
        encryption_keys=os.environ.get("KEYMEDIC_ENCRYPTION_KEYS", "").strip(),
        jobs_url=os.environ.get("KEYMEDIC_JOBS_URL", "").strip(),
        web_public_url=os.environ.get("KEYMEDIC_WEB_PUBLIC_URL", "").strip(),
        sync_request_deadline_s=_float("KEYMEDIC_SYNC_REQUEST_DEADLINE", 60.0),
        sandbox_history_size=_int("KEYMEDIC_SANDBOX_HISTORY_SIZE", 40),
        widget_jwt_secret=os.environ.get("KEYMEDIC_WIDGET_JWT_SECRET", "").strip(),
        widget_jwt_audience=os.environ.get("KEYMEDIC_WIDGET_JWT_AUDIENCE", "").strip() or "keymedic-widget",
        widget_origins=_origins("KEYMEDIC_WIDGET_ORIGINS"),
        widget_socket_url=os.environ.get("KEYMEDIC_WIDGET_SOCKET_URL", "").strip(),
        widget_demo_signin=_flag("KEYMEDIC_WIDGET_DEMO_SIGNIN"),
        rasa_url=os.environ.get("KEYMEDIC_RASA_URL", "").strip(),
        rasa_token=os.environ.get("KEYMEDIC_RASA_TOKEN", "").strip(),
        agent_token=os.environ.get("KEYMEDIC_AGENT_TOKEN", "").strip(),
        support_webhook_url=os.environ.get("KEYMEDIC_SUPPORT_WEBHOOK_URL", "").strip(),
        support_webhook_kind=_choice("KEYMEDIC_SUPPORT_WEBHOOK_KIND", ("json", "slack"), "json"),
        support_webhook_secret=os.environ.get("KEYMEDIC_SUPPORT_WEBHOOK_SECRET", "").strip(),
        support_webhook_timeout_s=_float("KEYMEDIC_SUPPORT_WEBHOOK_TIMEOUT", 10.0),
        outbox_retry_base_s=_float("KEYMEDIC_OUTBOX_RETRY_BASE", 30.0),
        outbox_retry_cap_s=_float("KEYMEDIC_OUTBOX_RETRY_CAP", 3600.0),
        outbox_lease_s=_float("KEYMEDIC_OUTBOX_LEASE", 120.0),
        log_level=_choice("KEYMEDIC_LOG_LEVEL", ("debug", "info", "warning", "error"), "info"),
        rasa_standby=_flag("KEYMEDIC_RASA_STANDBY", default=True),
        slack_signing_secret=os.environ.get("KEYMEDIC_SLACK_SIGNING_SECRET", "").strip(),
        slack_bot_token=os.environ.get("KEYMEDIC_SLACK_BOT_TOKEN", "").strip(),
        slack_api_url=os.environ.get("KEYMEDIC_SLACK_API_URL", "").strip(),
        slack_link_url=os.environ.get("KEYMEDIC_SLACK_LINK_URL", "").strip(),
        slack_support_channel=os.environ.get("KEYMEDIC_SLACK_SUPPORT_CHANNEL", "").strip(),
        slack_support_bot_token=os.environ.get("KEYMEDIC_SLACK_SUPPORT_BOT_TOKEN", "").strip(),
        slack_support_signing_secret=os.environ.get("KEYMEDIC_SLACK_SUPPORT_SIGNING_SECRET", "").strip(),
        redis_url=os.environ.get("KEYMEDIC_REDIS_URL", "").strip(),
        redis_namespace=_namespace("KEYMEDIC_REDIS_NAMESPACE", "keymedic"),
        socketio_redis_url=os.environ.get("KEYMEDIC_SOCKETIO_REDIS_URL", "").strip(),
        tracker_url=os.environ.get("KEYMEDIC_TRACKER_URL", "").strip(),
        tracker_db=os.environ.get("KEYMEDIC_TRACKER_DB", "").strip(),
        mode=_choice("KEYMEDIC_ENV", MODES, "local"),
        actions_token=os.environ.get("KEYMEDIC_ACTIONS_TOKEN", "").strip(),
        exchange_ca_bundle=os.environ.get("KEYMEDIC_EXCHANGE_CA_BUNDLE", "").strip(),
        exchange_url_overrides=_exchange_url_overrides(),
    )


def _exchange_url_overrides() -> tuple[tuple[str, str], ...]:
    found = []
    for exchange in EXCHANGE_IDS:
        url = os.environ.get(f"KEYMEDIC_{exchange.upper()}_URL", "").strip()
        if url:
            found.append((exchange, url))
    return tuple(found)


def exchange_base_url(exchange: str, default: str) -> str:
    """An exchange's API base URL: `KEYMEDIC_<EXCHANGE>_URL` when set (sandbox, tests), else `default`."""
    override = os.environ.get(f"KEYMEDIC_{exchange.upper()}_URL", "").strip()
    return override.rstrip("/") if override else default
