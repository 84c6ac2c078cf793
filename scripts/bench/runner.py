"""One benchmark run: training times, both bots up, load phases in alternating order, memory, extras.

The order keeps the comparison fair on a machine shared with other work: nothing trains while a server is
measured; the servers start one at a time; both bots stay up for the whole run and each load phase runs
against one bot while the other idles, KeyMedic first at one level and the starter first at the next, so
a change in the machine's background load is spread over both sides instead of landing on one.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.training import ensure_model
from scripts.bench import load, registry, servers
from scripts.bench.load import PhaseResult
from scripts.bench.machine import load_average
from scripts.bench.memory import PeakTracker
from scripts.bench.plan import Level, Sizes
from scripts.bench.training import Training, ensure_starter, keymedic_training
from scripts.bench.wording import WORDINGS, Wording

__all__ = ["Options", "BotResults", "RunResults", "run"]

BOTS = ("keymedic", "starter")


@dataclass(frozen=True)
class Options:
    sizes: Sizes
    quick: bool
    retrain: bool
    extras: tuple[str, ...] | None  # None: every registered measurement
    out_dir: Path  # var/bench
    only_extra: bool = False  # run the chosen extras alone: no training, no bots, no core figures


@dataclass
class BotResults:
    training: Training | None = None
    ready_s: dict[str, float] = field(default_factory=dict)
    levels: dict[int, PhaseResult] = field(default_factory=dict)
    warmup: PhaseResult | None = None
    long: list[float | None] = field(default_factory=list)
    long_wall_s: float = 0.0
    transcript: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResults:
    started_at: datetime
    sizes: Sizes
    quick: bool
    bots: dict[str, BotResults]
    memory: PeakTracker
    memory_names: dict[str, list[str]]  # bot -> its service names, in start order
    extras: list[registry.ExtraResult] = field(default_factory=list)
    load_average: dict[str, list[float]] = field(default_factory=dict)
    exited: dict[str, int] = field(default_factory=dict)  # "<bot>/<service>" -> exit code, if one died
    finished_at: datetime | None = None
    only_extra: bool = False


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Same for both bots: no usage reporting from either server during a measurement.
    env["RASA_TELEMETRY_ENABLED"] = "false"
    return env


def _say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def _describe(bot: str, what: str, result: PhaseResult) -> str:
    note = " (stopped by the phase deadline)" if result.truncated else ""
    return (
        f"{bot:8} {what}: {len(result.latencies_s)} turns, {result.errors} failed, "
        f"{result.wall_s:.1f} s{note}"
    )


def _run_level(stack: servers.Stack, wording: Wording, level: Level, sizes: Sizes, tag: str) -> PhaseResult:
    return asyncio.run(
        load.run_level(
            stack.rasa_url,
            wording,
            level,
            tag=tag,
            deadline_s=sizes.phase_timeout_s,
            timeout_s=sizes.request_timeout_s,
        )
    )


def _run_long(stack: servers.Stack, wording: Wording, sizes: Sizes) -> list[float | None]:
    return asyncio.run(
        load.run_long_conversation(
            stack.rasa_url,
            wording,
            sizes.long_turns,
            tag="long",
            deadline_s=sizes.long_timeout_s,
            timeout_s=sizes.request_timeout_s,
        )
    )


def _target(stack: servers.Stack) -> registry.Target:
    return registry.Target(bot=stack.bot, rasa_url=stack.rasa_url, urls=stack.urls(), env=dict(stack.env))


def _measure(stacks: Mapping[str, servers.Stack], options: Options, results: RunResults) -> None:
    sizes = options.sizes
    roots = {name: pid for stack in stacks.values() for name, pid in stack.roots().items()}

    def sample() -> None:
        results.memory.sample(roots)

    # One numbering of conversations per bot for the whole run, so no phase repeats another's wording.
    wordings = {bot: Wording(WORDINGS[bot]) for bot in BOTS}
    warmup = sizes.warmup_level
    for bot in BOTS:
        stack = stacks[bot]
        results.bots[bot].transcript = asyncio.run(
            load.transcript(
                stack.rasa_url,
                wordings[bot].next_script(),
                tag="transcript",
                timeout_s=sizes.request_timeout_s,
            )
        )
        result = _run_level(stacks[bot], wordings[bot], warmup, sizes, "warmup")
        results.bots[bot].warmup = result
        _say(_describe(bot, "warm-up (excluded)", result))
    sample()

    for index, level in enumerate(sizes.levels):
        for bot in BOTS if index % 2 == 0 else tuple(reversed(BOTS)):
            result = _run_level(stacks[bot], wordings[bot], level, sizes, f"c{level.concurrency}")
            results.bots[bot].levels[level.concurrency] = result
            _say(_describe(bot, f"{level.concurrency} concurrent x {level.conversations}", result))
            sample()

    for bot in BOTS if len(sizes.levels) % 2 == 0 else tuple(reversed(BOTS)):
        started = time.monotonic()
        latencies = _run_long(stacks[bot], wordings[bot], sizes)
        results.bots[bot].long = latencies
        results.bots[bot].long_wall_s = time.monotonic() - started
        failed = sum(1 for value in latencies if value is None)
        _say(f"{bot:8} long conversation: {len(latencies)} turns, {failed} failed")
        sample()

    results.extras = _run_extras(
        options, keymedic=_target(stacks["keymedic"]), starter=_target(stacks["starter"])
    )
    if results.extras:
        sample()


def _run_extras(
    options: Options, *, keymedic: registry.Target, starter: registry.Target
) -> list[registry.ExtraResult]:
    registry.load_measurements()
    available = registry.registered()
    unknown = sorted(set(options.extras or ()) - set(available))
    if unknown:
        _say(f"no extra measurement named {', '.join(unknown)}; registered: {', '.join(available) or 'none'}")
    chosen = {
        name: function
        for name, function in available.items()
        if options.extras is None or name in options.extras
    }
    if not chosen:
        return []
    sizes = options.sizes
    context = registry.BenchContext(
        keymedic=keymedic, starter=starter, sizes=sizes, quick=options.quick, budget_s=sizes.phase_timeout_s
    )
    extras = registry.run_measurements(context, chosen)
    for extra in extras:
        _say(f"extra {extra.name}: {extra.error or f'{len(extra.figures)} figures'}")
    return extras


def _exited(stacks: Mapping[str, servers.Stack]) -> dict[str, int]:
    return {
        f"{stack.bot}/{service.name}": service.process.returncode
        for stack in stacks.values()
        for service in stack.services
        if service.process is not None and service.process.poll() is not None
    }


@contextmanager
def _only_run(out_dir: Path) -> Iterator[None]:
    # Two runs at once would share the state directory and, worse, the CPU: both sets of figures would lie.
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".run.lock", "w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another benchmark run is in progress ({out_dir / '.run.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def run(options: Options) -> RunResults:
    """Measure both bots once; the servers are always stopped, whatever happens."""
    with _only_run(options.out_dir):
        return _run_only_extras(options) if options.only_extra else _run(options)


def _run_only_extras(options: Options) -> RunResults:
    """The chosen extras alone. They start what they measure themselves; the bots are not running, so the
    targets carry no URLs (only the environment the bots' processes would get)."""
    results = RunResults(
        started_at=datetime.now(timezone.utc),
        sizes=options.sizes,
        quick=options.quick,
        bots={bot: BotResults() for bot in BOTS},
        memory=PeakTracker(),
        memory_names={},
        load_average={"start": load_average()},
        only_extra=True,
    )
    env = _base_env()
    targets = {bot: registry.Target(bot=bot, rasa_url="", urls={}, env=env) for bot in BOTS}
    results.extras = _run_extras(options, keymedic=targets["keymedic"], starter=targets["starter"])
    results.load_average["end"] = load_average()
    results.finished_at = datetime.now(timezone.utc)
    return results


def _run(options: Options) -> RunResults:
    results = RunResults(
        started_at=datetime.now(timezone.utc),
        sizes=options.sizes,
        quick=options.quick,
        bots={bot: BotResults() for bot in BOTS},
        memory=PeakTracker(),
        memory_names={},
        load_average={"start": load_average()},
    )
    env = _base_env()
    log_root = options.out_dir / "logs"

    model = ensure_model()
    starter = ensure_starter(options.out_dir / "starter", env, log_root, retrain=options.retrain)
    results.bots["starter"].training = starter.training
    results.bots["keymedic"].training = keymedic_training(
        options.out_dir / "training", env, log_root, retrain=options.retrain, measure=not options.quick
    )

    # Fresh state for every run (tracker stores, KeyMedic's database, logs), kept until the next run so the
    # logs can be read after a failure.
    state = options.out_dir / "state"
    shutil.rmtree(state, ignore_errors=True)
    stacks = {
        "keymedic": servers.keymedic_stack(state / "keymedic", model, env),
        "starter": servers.starter_stack(state / "starter", starter, env),
    }
    try:
        for bot in BOTS:
            _say(f"starting {bot} ...")
            servers.start(stacks[bot])
            results.bots[bot].ready_s = dict(stacks[bot].ready_s)
            results.memory_names[bot] = [s.name for s in stacks[bot].services]
        results.load_average["servers_up"] = load_average()
        _measure(stacks, options, results)
        results.exited = _exited(stacks)
        for name, code in results.exited.items():
            _say(f"{name} exited with code {code} during the run: its figures are not trustworthy")
    finally:
        for bot in reversed(BOTS):
            servers.stop(stacks[bot])
    results.load_average["end"] = load_average()
    results.finished_at = datetime.now(timezone.utc)
    return results
