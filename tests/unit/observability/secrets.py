"""Every sandbox key as the strings that must never appear in a log (shared by the log tests)."""

from __future__ import annotations

from bot.sandbox.scenarios import credentials_for, scenario_table


def secret_fragments(credentials: dict[str, str]) -> list[str]:
    """The key, secret and passphrase; a PEM secret also line by line (a log may wrap or escape it)."""
    fragments = []
    for name in ("api_key", "api_secret", "passphrase"):
        value = credentials.get(name)
        if not value:
            continue
        fragments.append(value)
        if "-----BEGIN" in value:
            fragments += [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
    return fragments


def every_sandbox_key() -> list[tuple[str, dict[str, str]]]:
    """(id, credentials) for every exchange and scenario of the sandbox."""
    return [(f"{r.exchange}-{r.scenario}", credentials_for(r.exchange, r.scenario)) for r in scenario_table()]
