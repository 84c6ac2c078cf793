"""The deployment files lock the internal doors (DESIGN §8): production mode, Rasa's and the action server's
tokens from a Secret through the environment (never a command line), scrubbed Rasa logs, and a public proxy
that forwards only the channel webhooks and the web app's user-facing pages.

No container engine runs on these machines, so the files are checked as data."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cluster.haproxy import compose_frontends, render
from bot.config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
LOGGING_CONFIG = "bot/observability/rasa_logging.yml"
TOKENS = ("KEYMEDIC_RASA_TOKEN", "KEYMEDIC_ACTIONS_TOKEN")
# Rasa's HTTP API never faces the public: only its channel webhooks.
RASA_PUBLIC = {"/socket.io", "/webhooks/slack"}


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _deployments() -> dict[str, dict[str, Any]]:
    found = {}
    for path in K8S.glob("*.yaml"):
        for doc in _documents(path.name):
            if doc["kind"] == "Deployment":
                found[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]["containers"][0]
    return found


def _secret_env(container: dict[str, Any]) -> dict[str, str]:
    """Each env variable that comes from a Secret, and which Secret."""
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def _check_rasa_command(argv: list[str]) -> None:
    """A Rasa start command: the token-from-environment entrypoint, scrubbed logs, no REST channel."""
    assert argv[:3] == ["python", "-m", "rasa_plugins.run"], argv
    assert "--auth-token" not in argv and "-t" not in argv
    assert argv[argv.index("--logging-config-file") + 1] == LOGGING_CONFIG
    assert argv[argv.index("--credentials") + 1] == "credentials.production.yml"


def test_the_logging_config_named_in_the_deployments_exists() -> None:
    assert (PROJECT_ROOT / LOGGING_CONFIG).is_file()


def test_kubernetes_runs_in_production_mode() -> None:
    settings = dict(
        line.split("=", 1)
        for line in (K8S / "config.env").read_text().splitlines()
        if re.match(r"^\w+=", line)
    )
    assert settings["KEYMEDIC_ENV"] == "production"
    example = (K8S / "secrets.env.example").read_text()
    for name in (*TOKENS, "KEYMEDIC_ENCRYPTION_KEYS"):
        assert re.search(rf"^{name}=", example, re.M), name


def test_kubernetes_rasa_takes_its_tokens_from_the_secret_and_scrubs_its_logs() -> None:
    rasa = _deployments()["keymedic-rasa"]
    _check_rasa_command(rasa["command"])
    assert _secret_env(rasa) == {name: "keymedic-secrets" for name in TOKENS}
    # The readiness probe reads the token from the environment, not from the manifest.
    probe = rasa["readinessProbe"]
    assert "httpGet" not in probe and probe["exec"]["command"][:3] == [
        "python",
        "-m",
        "bot.observability.health",
    ]


@pytest.mark.parametrize(
    ("deployment", "tokens"),
    [
        ("keymedic-web", {"KEYMEDIC_RASA_TOKEN"}),
        ("keymedic-worker", {"KEYMEDIC_RASA_TOKEN"}),
        ("keymedic-scheduler", {"KEYMEDIC_RASA_TOKEN"}),
        ("keymedic-actions", {"KEYMEDIC_RASA_TOKEN", "KEYMEDIC_ACTIONS_TOKEN"}),
    ],
)
def test_every_caller_of_an_internal_api_gets_its_token_from_the_secret(
    deployment: str, tokens: set[str]
) -> None:
    assert _secret_env(_deployments()[deployment]) == {name: "keymedic-secrets" for name in tokens}


def test_the_ingress_forwards_only_the_channel_webhooks_to_rasa_and_no_internal_page() -> None:
    [ingress] = _documents("ingress.yaml")
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    to_rasa = {p["path"].rstrip("/") for p in paths if p["backend"]["service"]["name"] == "keymedic-rasa"}
    to_web = {p["path"].rstrip("/") for p in paths if p["backend"]["service"]["name"] == "keymedic-web"}
    assert to_rasa == RASA_PUBLIC
    assert to_web == {"/intake", "/widget", "/slack", "/agent"}  # not /metrics, /health, nor a catch-all "/"
    assert {p["pathType"] for p in paths} == {"Prefix"}


def test_network_policies_let_in_exactly_the_callers_that_exist() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in _documents("network-policy.yaml")}

    def callers(policy: str) -> set[str]:
        [rule] = policies[policy]["ingress"]
        return {
            f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            or f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for f in rule["from"]
        }

    assert callers("keymedic-rasa") == {
        "ingress-nginx",
        "keymedic-web",
        "keymedic-worker",
        "keymedic-scheduler",
        "keymedic-actions",
    }
    assert callers("keymedic-actions") == {"keymedic-rasa"}


def test_no_deployment_file_still_says_rasa_runs_without_a_token() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert "No --auth-token" not in path.read_text(), path


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    return loaded


def test_compose_runs_in_production_with_rasa_behind_its_token_and_scrubbed_logs() -> None:
    services = _compose()["services"]
    keymedic = {
        name: s for name, s in services.items() if s.get("image") == "keymedic:latest" and "<<" not in s
    }
    assert {"rasa-1", "rasa-2", "actions-1", "web", "worker"} <= keymedic.keys()
    for name, service in keymedic.items():
        if name != "migrate":
            assert service["environment"]["KEYMEDIC_ENV"] == "production", name
    for name in ("rasa-1", "rasa-2"):
        _check_rasa_command(shlex.split(services[name]["command"]))
        assert "/status" not in str(services[name]["healthcheck"])  # the probe takes the token from env


def test_compose_publishes_only_the_channel_webhooks_of_rasa() -> None:
    services = _compose()["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"edge", "web"}
    [mount] = services["edge"]["volumes"]
    config = (DEPLOY / mount.split(":")[0]).read_text()
    # HAProxy answers every path outside these prefixes itself (tests/integration/cluster/test_haproxy.py).
    [rule] = [line for line in config.splitlines() if "unless { path_beg" in line]
    assert set(rule.split("path_beg ", 1)[1].rstrip(" }").split()) == {p + "/" for p in RASA_PUBLIC}
    assert "not_public" in rule


def test_composes_haproxy_configurations_are_the_generated_ones() -> None:
    services = _compose()["services"]
    for name, frontend in compose_frontends().items():
        assert services[name]["image"].startswith("haproxy:")
        [mount] = services[name]["volumes"]
        assert mount == f"./haproxy/{name}.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"
        assert (DEPLOY / "haproxy" / f"{name}.cfg").read_text() == render(frontend), (
            "run: python -m bot.cluster.haproxy deploy/haproxy"
        )


def test_the_image_defaults_to_production_and_starts_rasa_with_its_token_from_the_environment() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ENV [^#]*KEYMEDIC_ENV=production", dockerfile, re.M | re.S)
    cmd = re.search(r"^CMD (\[.*?\])\s*$", dockerfile, re.M | re.S)
    assert cmd is not None
    _check_rasa_command(yaml.safe_load(cmd.group(1).replace("\\\n", "")))


@pytest.mark.parametrize("endpoints", ["endpoints.yml", "endpoints.cluster.yml"])
def test_rasa_sends_the_action_servers_token_in_a_header(endpoints: str) -> None:
    text = (PROJECT_ROOT / endpoints).read_text()
    action = yaml.safe_load(text)["action_endpoint"]
    assert action["headers"] == {"Authorization": "Bearer ${KEYMEDIC_ACTIONS_TOKEN}"}
    assert "token" not in action  # a query parameter would land in access logs


def test_the_deployment_files_name_no_real_secret() -> None:
    for path in (Path(K8S / "secrets.env.example"),):
        for line in path.read_text().splitlines():
            if re.match(r"^KEYMEDIC_\w*(TOKEN|KEYS|SECRET)=", line):
                assert "CHANGE_ME" in line, line


def test_every_job_worker_is_probed_on_the_heartbeat_file_it_writes() -> None:
    # A hung worker has no port to fail: its heartbeat file goes stale instead (bot/worker_liveness.py).
    workers = {name: c for name, c in _deployments().items() if c["command"][:2] == ["keymedic", "worker"]}
    assert workers.keys() == {"keymedic-worker", "keymedic-scheduler"}
    for name, container in workers.items():
        command = container["command"]
        path = command[command.index("--heartbeat") + 1]
        probe = container["livenessProbe"]["exec"]["command"]
        assert probe == ["python", "-m", "bot.worker_liveness", path], name
    services = _compose()["services"]
    for name in ("worker", "scheduler"):
        command = shlex.split(services[name]["command"])
        path = command[command.index("--heartbeat") + 1]
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "-m", "bot.worker_liveness", path]
