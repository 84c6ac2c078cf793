"""`python -m scripts.bench` (`make bench`): measure KeyMedic next to Rasa's starter bot, print, save JSON.

See docs/bench.md for what each figure means and how the baseline is built.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from types import FrameType

from bot.config import load_settings
from scripts.bench import plan, report, runner
from scripts.bench.figures import Figure
from scripts.bench.machine import machine_info


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description="Measure KeyMedic's speed and memory next to Rasa's starter bot (docs/bench.md).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: tiny sizes, about a minute of load"
    )
    parser.add_argument(
        "--levels",
        type=plan.parse_levels,
        help=f"CONCURRENCYxCONVERSATIONS,... (default {','.join(map(str, plan.DEFAULT.levels))})",
    )
    parser.add_argument(
        "--long-turns", type=int, help=f"turns of the long conversation ({plan.DEFAULT.long_turns})"
    )
    parser.add_argument("--warmup", type=int, help="warm-up conversations per bot, excluded from the figures")
    parser.add_argument("--phase-timeout", type=float, help="seconds after which a phase stops sending")
    parser.add_argument(
        "--long-timeout",
        type=float,
        help=f"seconds the long conversation may take ({plan.DEFAULT.long_timeout_s:.0f})",
    )
    parser.add_argument(
        "--retrain", action="store_true", help="rebuild the starter bot and time both trainings again"
    )
    parser.add_argument(
        "--extra",
        default="all",
        help="registered extra measurements to run: all, none, or NAME,NAME (scripts/bench/registry.py)",
    )
    parser.add_argument(
        "--only-extra",
        action="store_true",
        help="run only the --extra measurements: no training, no bots, no core figures",
    )
    return parser


def _sizes(args: argparse.Namespace) -> plan.Sizes:
    sizes = plan.QUICK if args.quick else plan.DEFAULT
    if args.levels is not None:
        sizes = replace(sizes, levels=args.levels)
    if args.long_turns is not None:
        sizes = replace(sizes, long_turns=args.long_turns)
    if args.warmup is not None:
        sizes = replace(sizes, warmup_conversations=args.warmup)
    if args.phase_timeout is not None:
        sizes = replace(sizes, phase_timeout_s=args.phase_timeout)
    if args.long_timeout is not None:
        sizes = replace(sizes, long_timeout_s=args.long_timeout)
    if (
        sizes.long_turns < 2 * sizes.long_window
        or sizes.warmup_conversations < 1
        or sizes.phase_timeout_s <= 0
        or sizes.long_timeout_s <= 0
    ):
        raise SystemExit(
            f"bench: the long conversation needs at least {2 * sizes.long_window} turns, "
            "the warm-up at least one conversation, and the timeouts must be positive"
        )
    return sizes


def _extras(value: str) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if value == "none":
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception, so the runner's `finally` stops every server it started.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = runner.Options(
        sizes=_sizes(args),
        quick=args.quick,
        retrain=args.retrain,
        extras=_extras(args.extra),
        out_dir=load_settings().var_dir / "bench",
        only_extra=args.only_extra,
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        results = runner.run(options)
    except RuntimeError as error:  # a server did not come up, a training failed
        print(f"bench: {error}", file=sys.stderr, flush=True)
        return 1
    sections: list[tuple[str, Sequence[Figure]]] = []
    if not results.only_extra:
        sections.append(("", report.core_figures(results)))
    sections += [(extra.name, extra.figures) for extra in results.extras if extra.figures]
    print()
    print(report.render_table(sections))
    for extra in results.extras:
        if extra.error:
            print(f"extra {extra.name} failed: {extra.error}")
    stamp = results.started_at.strftime("%Y%m%dT%H%M%SZ")
    # An extras-only run must not replace `latest.json`, which later comparisons read as a full run's.
    latest = "latest-extra" if results.only_extra else "latest"
    if results.only_extra:
        stamp += "-extra"
    path = report.write_json(report.to_json(results, machine_info()), options.out_dir, stamp, latest=latest)
    print(f"\nbench: results in {path} and {path.with_name(latest + '.json')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
