"""`soak` (issue 19): 20 conversations at once for `KEYMEDIC_SOAK_MINUTES` (30; 2 with `--quick`) with a
random fault every 20 s, on a supervised run of its own (`scripts.bench.soak`): turns answered, failed
visibly, lost (must be 0), and each process's memory at the start and the end.

It starts its own run rather than using the bench's: the faults kill and hang processes, which only a run
under `keymedic run`'s supervisor survives, and they must not disturb the core figures."""

from __future__ import annotations

from scripts.bench.figures import Figure
from scripts.bench.registry import BenchContext, measurement
from scripts.bench.soak import minutes_from_environment, soak


@measurement("soak")
def soak_run(context: BenchContext) -> list[Figure]:
    result = soak(minutes_from_environment(context.quick))
    figures = [
        Figure("soak minutes", "min", keymedic=result.minutes),
        Figure("soak turns answered", "", keymedic=result.answered, better="higher"),
        Figure("soak turns answered with the apology", "", keymedic=result.answered_with_apology),
        Figure("soak turns failed visibly", "", keymedic=result.failed_visibly),
        Figure("soak turns lost (must be 0)", "", keymedic=result.lost),
        Figure("soak turns stored twice (must be 0)", "", keymedic=result.duplicated),
        Figure("soak faults", "", keymedic=sum(result.faults.values())),
    ]
    for name, start in result.memory_start_mib.items():
        figures.append(Figure(f"soak {name} memory at start", "MiB", keymedic=start))
        figures.append(Figure(f"soak {name} memory at end", "MiB", keymedic=result.memory_end_mib.get(name)))
    if result.lost or result.duplicated or result.supervisor_gave_up:
        raise RuntimeError(f"soak: {result.as_json()}")
    return figures
