"""`python -m rasa_plugins.run [rasa run options]`: `rasa run` with its HTTP API token from the environment.

Rasa takes its token only as `--auth-token` on the command line (rasa/cli/arguments/run.py, Rasa 3.6), where
every user of the machine can read it (`ps`, /proc/<pid>/cmdline) and so can anyone who inspects the pod or
container. Rasa's Helm chart passes it there from a Secret. This entrypoint instead reads
`KEYMEDIC_RASA_TOKEN` (bot/config.py; a process's environment is readable by its owner only) and hands it to
Rasa's own command line parser through `sys.argv` inside this process: the kernel's copy of the command line,
the one others can read, never holds it.

Before Rasa starts it checks what KeyMedic requires of every Rasa process:
- a token, in every mode (Rasa's HTTP API always takes one: DESIGN §8), and never one given in argv;
- in production (bot/production.py): the shared checks, no REST channel in the channel configuration, and
  the scrubbing logging configuration (`--logging-config-file`), so no secret reaches Rasa's logs.

Then it installs KeyMedic's replacements of Rasa functions, in this one place (`rasa_plugins.startup`;
docs/store.md, "Rasa plug-ins"), and refuses to start when one no longer fits the installed Rasa.

A standby (`bot.standby`) loads the model and waits, unbound, until promoted (`rasa_plugins.standby`).

With `KEYMEDIC_RASA_METRICS_PORT` set, it also serves the families counted in the Rasa server's own process
(`keymedic_turns_not_saved_total`, docs/operating.md) on that port of 127.0.0.1 (`GET /metrics`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import load_settings
from bot.production import rasa_credentials_violations, refuse_to_start
from bot.standby import PROMOTE_DIR_ENV

__all__ = ["main", "rasa_token_argument", "serve_metrics"]

PROCESS = "rasa"


def _options(argv: Sequence[str]) -> argparse.Namespace:
    # Only the options this module checks; Rasa parses the whole command line itself.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-t", "--auth-token")
    parser.add_argument("--credentials", default="credentials.yml")
    parser.add_argument("--logging-config-file")
    known, _ = parser.parse_known_args(list(argv))
    return known


def rasa_token_argument(token: str) -> str:
    """The token as one `--auth-token=...` element for Rasa's parser: a generated token may start with `-`
    (URL-safe base64), which as a separate element argparse reads as an option ("expected one argument")."""
    return f"--auth-token={token}"


def serve_metrics(port_text: str | None) -> int | None:
    """Serve this process's KeyMedic metrics on 127.0.0.1:`port_text` in a thread; the port, or None."""
    if not port_text or not port_text.strip():
        return None
    from prometheus_client import start_http_server

    from bot.observability.metrics import REGISTRY

    port = int(port_text)
    start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Check the settings, then run `rasa run` with the token; returns an exit code when it refuses."""
    args = list(sys.argv[1:] if argv is None else argv)
    options = _options(args)
    if options.auth_token is not None:
        print(
            f"{PROCESS}: refusing --auth-token on the command line; set KEYMEDIC_RASA_TOKEN", file=sys.stderr
        )
        return 1
    settings = load_settings()
    extra = rasa_credentials_violations(settings, Path(options.credentials))
    if not options.logging_config_file:
        extra.append("no --logging-config-file: Rasa's own logs would not be scrubbed of secrets")
    if refuse_to_start(settings, PROCESS, extra):
        return 1
    if not settings.rasa_token:
        print(
            f"{PROCESS}: KEYMEDIC_RASA_TOKEN is not set; Rasa's HTTP API always takes a token",
            file=sys.stderr,
        )
        return 1
    from rasa_plugins import startup
    from rasa_plugins.patching import RasaChanged

    try:
        startup.install()
    except RasaChanged as error:
        print(f"{PROCESS}: {error}", file=sys.stderr)
        return 1
    metrics_port = os.environ.get("KEYMEDIC_RASA_METRICS_PORT")
    if os.environ.get(PROMOTE_DIR_ENV, "").strip():
        # A standby must not take the serving Rasa's metrics port; it serves them once promoted.
        from rasa_plugins import standby

        standby.on_promoted.append(lambda: serve_metrics(metrics_port))
    else:
        serve_metrics(metrics_port)
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", "run", *args, rasa_token_argument(settings.rasa_token)]
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
