"""The run's figures as an aligned table for the terminal and as JSON under `var/bench/`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.bench.figures import Figure, format_ratio, format_value
from scripts.bench.load import PhaseResult
from scripts.bench.runner import BOTS, RunResults
from scripts.bench.stats import summarize, window_means

__all__ = ["core_figures", "render_table", "to_json", "write_json"]

HEADERS = ("figure", "KeyMedic", "starter", "ratio")
TRUNCATED = "stopped by the phase deadline: fewer turns than planned"


def _conversations(n: int) -> str:
    return f"{n} conversation{'s' if n != 1 else ''}"


def _level_figures(results: RunResults) -> list[Figure]:
    figures: list[Figure] = []
    for level in results.sizes.levels:
        phases = {bot: results.bots[bot].levels.get(level.concurrency) for bot in BOTS}
        summaries = {bot: summarize(p.latencies_s) if p else None for bot, p in phases.items()}
        note = TRUNCATED if any(p is not None and p.truncated for p in phases.values()) else ""
        for label in ("p50", "p95", "p99"):
            values = {bot: getattr(s, f"{label}_ms") if s else None for bot, s in summaries.items()}
            figures.append(
                Figure(
                    f"turn latency {label}, {_conversations(level.concurrency)} at once",
                    "ms",
                    values["keymedic"],
                    values["starter"],
                    note=note,
                )
            )
    top = results.sizes.throughput_level
    phases = {bot: results.bots[bot].levels.get(top.concurrency) for bot in BOTS}
    figures.append(
        Figure(
            f"throughput, {_conversations(top.concurrency)} at once",
            "msg/s",
            phases["keymedic"].throughput if phases["keymedic"] else None,
            phases["starter"].throughput if phases["starter"] else None,
            better="higher",
        )
    )
    return figures


def _long_figures(results: RunResults) -> list[Figure]:
    window = results.sizes.long_window
    means = {bot: window_means(results.bots[bot].long, window) for bot in BOTS}
    # Label with the turns actually compared (a deadline may have cut the conversation short).
    reference = means["keymedic"] or means["starter"]
    last = f"{reference.last_turns[0]}–{reference.last_turns[1]}" if reference else "last"
    first = f"1–{window}"
    truncated = any(len(results.bots[bot].long) < results.sizes.long_turns for bot in BOTS)
    note = TRUNCATED if truncated else ""
    return [
        Figure(
            f"long conversation, mean of turns {first}",
            "ms",
            means["keymedic"].first_ms if means["keymedic"] else None,
            means["starter"].first_ms if means["starter"] else None,
        ),
        Figure(
            f"long conversation, mean of turns {last}",
            "ms",
            means["keymedic"].last_ms if means["keymedic"] else None,
            means["starter"].last_ms if means["starter"] else None,
            note=note,
        ),
        Figure(
            f"long conversation, turns {last} / turns {first}",
            "×",
            means["keymedic"].growth if means["keymedic"] else None,
            means["starter"].growth if means["starter"] else None,
            note=note,
        ),
    ]


def _errors(results: RunResults, bot: str) -> float:
    phases: list[PhaseResult] = list(results.bots[bot].levels.values())
    long_failed = sum(1 for value in results.bots[bot].long if value is None)
    return float(sum(p.errors for p in phases) + long_failed)


def _training_note(results: RunResults) -> str:
    """Say where a training time not measured in this run comes from."""
    parts = []
    for bot, label in (("keymedic", "KeyMedic"), ("starter", "starter")):
        training = results.bots[bot].training
        if training is None or training.source == "measured":
            continue
        if training.source == "cached":
            parts.append(
                f"{label}'s reused from {training.measured_at} (same inputs; --retrain measures again)"
            )
        else:
            parts.append(f"{label}'s not measured in a --quick run")
    return "; ".join(parts)


def _other_figures(results: RunResults) -> list[Figure]:
    keymedic, starter = results.bots["keymedic"], results.bots["starter"]
    figures = [
        Figure(
            "failed turns, all measured phases",
            "count",
            _errors(results, "keymedic"),
            _errors(results, "starter"),
        ),
        Figure(
            "model training time",
            "s",
            keymedic.training.seconds if keymedic.training else None,
            starter.training.seconds if starter.training else None,
            note=_training_note(results),
        ),
        Figure("Rasa server start → ready", "s", keymedic.ready_s.get("rasa"), starter.ready_s.get("rasa")),
    ]
    names = list(results.memory_names.get("keymedic", []))
    names += [n for n in results.memory_names.get("starter", []) if n not in names]
    for name in names:
        figures.append(
            Figure(
                f"peak memory, {name}",
                "MiB",
                results.memory.peak_mib(f"keymedic/{name}"),
                results.memory.peak_mib(f"starter/{name}"),
            )
        )
    totals = {
        bot: sum(results.memory.peak_mib(f"{bot}/{n}") or 0.0 for n in results.memory_names.get(bot, []))
        for bot in BOTS
    }
    figures.append(
        Figure("peak memory, all processes", "MiB", totals["keymedic"] or None, totals["starter"] or None)
    )
    return figures


def core_figures(results: RunResults) -> list[Figure]:
    """Every figure of the run except the registered extras, in table order."""
    return _level_figures(results) + _long_figures(results) + _other_figures(results)


def render_table(sections: Sequence[tuple[str, Sequence[Figure]]]) -> str:
    """An aligned text table (figure, KeyMedic, starter, ratio); figures with a note get a footnote mark."""
    notes: list[str] = []
    rows: list[tuple[str, ...] | None] = []
    for title, figures in sections:
        if title:
            rows.append(None)
            rows.append((f"[{title}]", "", "", ""))
        for figure in figures:
            name = figure.name
            if figure.note:
                if figure.note not in notes:
                    notes.append(figure.note)
                name += "*" * (notes.index(figure.note) + 1)
            rows.append(
                (
                    name,
                    format_value(figure.keymedic, figure.unit),
                    format_value(figure.starter, figure.unit),
                    format_ratio(figure.keymedic, figure.starter),
                )
            )
    real_rows = [row for row in rows if row is not None]
    widths = [max(len(row[i]) for row in [HEADERS, *real_rows]) for i in range(len(HEADERS))]

    def line(cells: Sequence[str]) -> str:
        name, *values = cells
        padded = [name.ljust(widths[0]), *(v.rjust(w) for v, w in zip(values, widths[1:], strict=True))]
        return "  ".join(padded).rstrip()

    out = [line(HEADERS), "  ".join("-" * w for w in widths)]
    out += ["" if row is None else line(row) for row in rows]
    out.append("")
    out.append("ratio = KeyMedic / starter; lower is better except for throughput.")
    out += [f"{'*' * (i + 1)} {note}" for i, note in enumerate(notes)]
    return "\n".join(out)


def _phase_json(result: PhaseResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    summary = summarize(result.latencies_s)
    return {
        "turns": result.turns,
        "errors": result.errors,
        "wall_s": round(result.wall_s, 3),
        "throughput_msg_s": result.throughput,
        "truncated": result.truncated,
        "latency_ms": None if summary is None else summary.__dict__,
    }


def to_json(results: RunResults, machine: dict[str, Any]) -> dict[str, Any]:
    """Everything a later comparison needs: figures, sizes, machine, and each phase's raw summary."""
    finished = results.finished_at or results.started_at
    details: dict[str, Any] = {}
    for bot in BOTS:
        r = results.bots[bot]
        details[bot] = {
            "training": r.training.as_json() if r.training else None,
            "start_to_ready_s": r.ready_s,
            "transcript": r.transcript,
            "warmup": _phase_json(r.warmup),
            "levels": {str(c): _phase_json(p) for c, p in r.levels.items()},
            "long_conversation_ms": [None if v is None else round(v * 1000, 2) for v in r.long],
            "long_conversation_wall_s": round(r.long_wall_s, 3),
            "memory_processes": {
                name: results.memory.processes(f"{bot}/{name}") for name in results.memory_names.get(bot, [])
            },
        }
    return {
        "schema": 1,
        "started_at": results.started_at.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "duration_s": round((finished - results.started_at).total_seconds(), 1),
        "quick": results.quick,
        "only_extra": results.only_extra,
        "sizes": results.sizes.as_json(),
        "machine": {**machine, "load_average": results.load_average},
        "figures": [] if results.only_extra else [f.as_json() for f in core_figures(results)],
        "extra": {extra.name: extra.as_json() for extra in results.extras},
        "exited_during_run": results.exited,
        "details": details,
    }


def write_json(data: dict[str, Any], out_dir: Path, stamp: str, *, latest: str = "latest") -> Path:
    """Write `<stamp>.json` and `<latest>.json` (a copy, so it survives the timestamped file being pruned)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path = out_dir / f"{stamp}.json"
    path.write_text(text)
    (out_dir / f"{latest}.json").write_text(text)
    return path
