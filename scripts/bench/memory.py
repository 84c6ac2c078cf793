"""Peak memory of a process tree: VmHWM from `/proc/<pid>/status`, summed over the tree (Linux only).

VmHWM is the kernel's high-water mark of a process's resident set, so one reading near the end of a run
gives each process's peak without sampling. Summing it over a tree counts pages that a forked child shares
with its parent twice, and a child that has already exited is only counted if it was seen while alive:
`PeakTracker.sample` is therefore called after every phase, and keeps the highest reading per pid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["parse_vmhwm_kib", "parse_ppid", "descendants", "process_parents", "PeakTracker"]

PROC = Path("/proc")


def parse_vmhwm_kib(status_text: str) -> int | None:
    """The `VmHWM:` value of a `/proc/<pid>/status` text in KiB; None for a kernel thread or zombie."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            fields = line.split()
            if len(fields) != 3 or fields[2] != "kB":
                raise ValueError(f"unexpected VmHWM line: {line!r}")
            return int(fields[1])
    return None


def parse_ppid(stat_text: str) -> int:
    """The parent pid from a `/proc/<pid>/stat` text.

    The command name (field 2) is in parentheses and may itself contain spaces and parentheses, so the
    fields are counted from the last `)` (proc(5)).
    """
    after_comm = stat_text[stat_text.rindex(")") + 1 :].split()
    return int(after_comm[1])  # state, then ppid


def descendants(root: int, parents: Mapping[int, int]) -> list[int]:
    """`root` and every pid below it, given a pid -> parent pid map; sorted."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return sorted(found)


def process_parents(proc: Path = PROC) -> dict[int, int]:
    """pid -> parent pid for every process visible now."""
    parents: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = parse_ppid((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # the process exited while we looked
            continue
    return parents


def _vmhwm(pid: int, proc: Path) -> int | None:
    try:
        return parse_vmhwm_kib((proc / str(pid) / "status").read_text())
    except OSError:
        return None


class PeakTracker:
    """The highest VmHWM seen per pid, grouped under names ("keymedic/rasa", "starter/rasa", …)."""

    def __init__(self, proc: Path = PROC) -> None:
        self._proc = proc
        self._peaks: dict[str, dict[int, int]] = {}

    def sample(self, roots: Mapping[str, int]) -> None:
        """Read VmHWM of every process in the tree of each named root pid."""
        parents = process_parents(self._proc)
        for name, root in roots.items():
            peaks = self._peaks.setdefault(name, {})
            for pid in descendants(root, parents):
                kib = _vmhwm(pid, self._proc)
                if kib is not None:
                    peaks[pid] = max(kib, peaks.get(pid, 0))

    def peak_mib(self, name: str) -> float | None:
        """The summed peak of a named tree in MiB; None when it was never sampled."""
        peaks = self._peaks.get(name)
        return sum(peaks.values()) / 1024 if peaks else None

    def processes(self, name: str) -> int:
        """How many distinct processes were seen in a named tree."""
        return len(self._peaks.get(name, {}))

    def names(self) -> Iterable[str]:
        """Every name sampled so far, in first-sampled order."""
        return list(self._peaks)
