'''Named extra measurements that other parts of KeyMedic add to `make bench` ("diagnosis", "resync", …).

A measurement is a function that takes a `BenchContext` (where the running bots are, the run's sizes and a
time budget) and returns rows of `Figure`s, which the report prints under the core figures and writes to
the JSON under `extra.<name>`. Register one with `@measurement("name")` in a module of
`scripts/bench/measurements/`; every module there is imported at the start of a run (like rasa_sdk's
executor imports every action module), so importing it must be cheap and free of side effects.

The function runs after the core figures, while both bots are still up; it must stay within
`context.budget_s`, send load only to the URLs in the context (all on 127.0.0.1), and raise on failure — the
run then records the error for that measurement and goes on with the next one.

Example — `scripts/bench/measurements/diagnosis.py` (not shipped; the diagnosis issue owns it). KeyMedic's
processes already point every exchange at their own sandbox (`KEYMEDIC_KRAKEN_URL` in `context.keymedic.env`):

    import json
    import subprocess
    import sys
    import time
    from pathlib import Path

    from bot.sandbox.scenarios import credentials_for
    from scripts.bench.figures import Figure
    from scripts.bench.registry import BenchContext, measurement
    from scripts.bench.stats import percentile

    @measurement("diagnosis")
    def diagnosis(context: BenchContext) -> list[Figure]:
        """Wall time of `keymedic diagnose` on the sandbox's valid read-only Kraken key."""
        keymedic = str(Path(sys.executable).with_name("keymedic"))
        key = json.dumps(credentials_for("kraken", "valid"))  # on stdin, never argv (DESIGN §4)
        deadline = time.monotonic() + context.budget_s
        times_ms: list[float] = []
        while len(times_ms) < (5 if context.quick else 30) and time.monotonic() < deadline:
            started = time.monotonic()
            subprocess.run([keymedic, "diagnose", "--exchange", "kraken"], input=key, text=True,
                           env=dict(context.keymedic.env), capture_output=True, check=True, timeout=30)
            times_ms.append((time.monotonic() - started) * 1000)
        # KeyMedic-only: the starter has no such figure, so `starter` stays None and the ratio shows "—".
        return [Figure("diagnosis p50", "ms", keymedic=percentile(times_ms, 50)),
                Figure("diagnosis p95", "ms", keymedic=percentile(times_ms, 95))]
'''

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scripts.bench.figures import Figure
from scripts.bench.plan import Sizes

__all__ = [
    "Target",
    "BenchContext",
    "Measurement",
    "ExtraResult",
    "measurement",
    "registered",
    "load_measurements",
    "run_measurements",
]

PLUGIN_PACKAGE = "scripts.bench.measurements"


@dataclass(frozen=True)
class Target:
    """One running bot: its Rasa URL, the URL of each of its services by name, and its processes' env."""

    bot: str
    rasa_url: str
    urls: Mapping[str, str]
    env: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class BenchContext:
    """What a measurement may use."""

    keymedic: Target
    starter: Target
    sizes: Sizes
    quick: bool
    budget_s: float  # the wall time a measurement may take


Measurement = Callable[[BenchContext], Sequence[Figure]]

_REGISTRY: dict[str, Measurement] = {}


def measurement(name: str) -> Callable[[Measurement], Measurement]:
    """Register a measurement under `name` (its key in the JSON); a name can be registered once."""

    def register(function: Measurement) -> Measurement:
        if name in _REGISTRY and _REGISTRY[name] is not function:
            raise ValueError(f"a bench measurement named {name!r} is already registered")
        _REGISTRY[name] = function
        return function

    return register


def registered() -> Mapping[str, Measurement]:
    """The registered measurements by name, in registration order."""
    return dict(_REGISTRY)


def load_measurements(package: str = PLUGIN_PACKAGE) -> None:
    """Import every module of the plugin package, so their `@measurement` decorators run."""
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)


@dataclass(frozen=True)
class ExtraResult:
    """The outcome of one measurement: its figures, or the error that stopped it."""

    name: str
    figures: tuple[Figure, ...]
    seconds: float
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": [f.as_json() for f in self.figures],
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


def run_measurements(
    context: BenchContext, measurements: Mapping[str, Measurement] | None = None
) -> list[ExtraResult]:
    """Run each measurement in turn; one that raises is recorded with its error and does not stop the rest."""
    results: list[ExtraResult] = []
    for name, function in (registered() if measurements is None else measurements).items():
        started = time.monotonic()
        try:
            figures = tuple(function(context))
        except Exception as error:  # a plugin's failure must not lose the core figures of the run
            results.append(
                ExtraResult(name, (), time.monotonic() - started, f"{type(error).__name__}: {error}")
            )
        else:
            results.append(ExtraResult(name, figures, time.monotonic() - started))
    return results
