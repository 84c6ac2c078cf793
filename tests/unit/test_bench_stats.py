"""The pure parts of `make bench`: statistics, figure formatting, /proc parsing, sizes, the registry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scripts.bench import registry
from scripts.bench.figures import Figure, format_ratio, format_value, ratio
from scripts.bench.memory import PeakTracker, descendants, parse_ppid, parse_vmhwm_kib
from scripts.bench.plan import DEFAULT, Level, Sizes, parse_levels
from scripts.bench.report import render_table
from scripts.bench.stats import mean, percentile, summarize, window_means

# A trimmed /proc/<pid>/status of a Rasa server (Linux 6.x).
RASA_STATUS = """\
Name:\trasa
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
PPid:\t4200
VmPeak:\t 6083412 kB
VmSize:\t 5997100 kB
VmHWM:\t 1224660 kB
VmRSS:\t 1198020 kB
Threads:\t41
"""

KERNEL_THREAD_STATUS = "Name:\tkworker/0:1\nState:\tI (idle)\nPid:\t17\nPPid:\t2\nThreads:\t1\n"


# --- statistics ---------------------------------------------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 95) == pytest.approx(38.5)


def test_percentile_ignores_input_order_and_handles_one_value() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_and_mean_refuse_empty_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        mean([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_reports_milliseconds_and_none_without_samples() -> None:
    summary = summarize([0.010, 0.020, 0.030])
    assert summary is not None
    assert summary.count == 3
    assert summary.p50_ms == pytest.approx(20.0)
    assert summary.mean_ms == pytest.approx(20.0)
    assert summarize([]) is None


def test_window_means_compare_first_and_last_turns_without_failed_ones() -> None:
    latencies: list[float | None] = [0.010, None, 0.030] + [0.050] * 4 + [0.100, None, 0.300]
    means = window_means(latencies, 3)
    assert means is not None
    assert means.first_ms == pytest.approx(20.0)
    assert means.last_ms == pytest.approx(200.0)
    assert (means.first_turns, means.last_turns) == ((1, 3), (8, 10))
    assert means.growth == pytest.approx(10.0)


def test_window_means_need_two_full_windows() -> None:
    assert window_means([0.01] * 5, 3) is None
    assert window_means([None] * 6, 3) is None


# --- figures and the table ----------------------------------------------------------------------------------


def test_ratio_is_keymedic_over_starter_and_undefined_without_both_sides() -> None:
    assert ratio(30.0, 20.0) == 1.5
    assert ratio(None, 20.0) is None
    assert ratio(30.0, None) is None
    assert ratio(30.0, 0.0) is None
    assert Figure("x", "ms", 10.0, 40.0).ratio == 0.25


def test_format_ratio() -> None:
    assert format_ratio(30.0, 20.0) == "1.50×"
    assert format_ratio(1.0, 3.0) == "0.33×"
    assert format_ratio(250.0, 10.0) == "25.0×"
    assert format_ratio(None, 10.0) == "—"
    assert format_ratio(5.0, 0.0) == "—"


def test_format_value_uses_fewer_decimals_for_bigger_numbers() -> None:
    assert format_value(1342.4, "ms") == "1342 ms"
    assert format_value(40.09, "ms") == "40.1 ms"
    assert format_value(3.14159, "s") == "3.14 s"
    assert format_value(2.0, "count") == "2"
    assert format_value(1.386, "×") == "1.39×"
    assert format_value(None, "MiB") == "—"


def test_table_aligns_columns_and_marks_figures_with_notes() -> None:
    table = render_table(
        [
            (
                "",
                [
                    Figure("turn latency p50", "ms", 40.1, 52.7),
                    Figure("training", "s", None, 57.9, note="n/a"),
                ],
            ),
            ("diagnosis", [Figure("diagnosis p50", "ms", 812.0)]),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "KeyMedic", "starter", "ratio"]
    rows = [line for line in lines if line.startswith(("turn", "training", "diagnosis p50"))]
    assert len({len(line) for line in rows}) == 1  # right-aligned columns end at the same place
    assert "0.76×" in rows[0]
    assert rows[1].startswith("training*")
    assert "[diagnosis]" in table
    assert "* n/a" in lines


def test_figure_json_carries_its_ratio() -> None:
    assert Figure("throughput", "msg/s", 30.0, 40.0, better="higher").as_json() == {
        "name": "throughput",
        "unit": "msg/s",
        "keymedic": 30.0,
        "starter": 40.0,
        "ratio": 0.75,
        "better": "higher",
        "note": "",
    }


# --- /proc --------------------------------------------------------------------------------------------------


def test_vmhwm_is_read_in_kib_from_a_status_text() -> None:
    assert parse_vmhwm_kib(RASA_STATUS) == 1224660


def test_a_kernel_thread_has_no_vmhwm() -> None:
    assert parse_vmhwm_kib(KERNEL_THREAD_STATUS) is None


def test_vmhwm_in_another_unit_is_an_error_not_a_wrong_number() -> None:
    with pytest.raises(ValueError):
        parse_vmhwm_kib("VmHWM:\t 12 MB\n")


def test_ppid_survives_a_command_name_with_spaces_and_parentheses() -> None:
    assert parse_ppid("4242 (rasa (main) x) S 4200 4242 4242 0 -1 4194560") == 4200


def test_descendants_follow_the_whole_tree_only() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert descendants(10, parents) == [10, 11, 12, 13]
    assert descendants(13, parents) == [13]


def test_peak_tracker_sums_a_tree_and_keeps_each_process_highest_reading(tmp_path: Path) -> None:
    def process(pid: int, ppid: int, vmhwm_kib: int) -> None:
        folder = tmp_path / str(pid)
        folder.mkdir(exist_ok=True)
        (folder / "stat").write_text(f"{pid} (python3) S {ppid} 1 1 0")
        (folder / "status").write_text(f"Name:\tpython3\nVmHWM:\t{vmhwm_kib} kB\n")

    process(100, 1, 2048)
    process(101, 100, 1024)
    process(200, 1, 4096)
    tracker = PeakTracker(proc=tmp_path)
    tracker.sample({"keymedic/rasa": 100})
    process(101, 100, 512)  # a later, lower reading does not lower the peak
    tracker.sample({"keymedic/rasa": 100})
    assert tracker.peak_mib("keymedic/rasa") == 3.0
    assert tracker.processes("keymedic/rasa") == 2
    assert tracker.peak_mib("starter/rasa") is None


# --- sizes --------------------------------------------------------------------------------------------------


def test_levels_parse_sorted_by_concurrency() -> None:
    assert parse_levels("10x10, 1x30,50X6") == (Level(1, 30), Level(10, 10), Level(50, 6))


@pytest.mark.parametrize("text", ["10", "10x", "x3", "0x5", "1x0", "1x2,1x3", "ten x 3"])
def test_bad_levels_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_levels(text)


def test_throughput_is_measured_at_the_highest_concurrency() -> None:
    assert DEFAULT.throughput_level == Level(50, 6)
    assert isinstance(DEFAULT, Sizes)


# --- the registry of extra measurements ---------------------------------------------------------------------


def _context() -> registry.BenchContext:
    keymedic = registry.Target("keymedic", "http://127.0.0.1:1", {"rasa": "http://127.0.0.1:1"}, {})
    starter = registry.Target("starter", "http://127.0.0.1:2", {"rasa": "http://127.0.0.1:2"}, {})
    return registry.BenchContext(keymedic=keymedic, starter=starter, sizes=DEFAULT, quick=True, budget_s=1.0)


def test_a_failing_measurement_is_recorded_and_the_next_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})

    @registry.measurement("broken")
    def broken(context: registry.BenchContext) -> list[Figure]:
        raise RuntimeError("sandbox not reachable")

    @registry.measurement("diagnosis")
    def diagnosis(context: registry.BenchContext) -> list[Figure]:
        return [Figure("diagnosis p50", "ms", 800.0 if context.quick else 0.0)]

    results = registry.run_measurements(_context())
    assert [(r.name, r.error) for r in results] == [
        ("broken", "RuntimeError: sandbox not reachable"),
        ("diagnosis", None),
    ]
    assert results[1].figures == (Figure("diagnosis p50", "ms", 800.0),)


def test_a_name_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.measurement("resync")(lambda context: [])
    with pytest.raises(ValueError):
        registry.measurement("resync")(lambda context: [])


def test_the_shipped_plugin_package_registers_every_extra_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})
    # Imported modules would not run their decorators again: forget them for this test (restored after it).
    for name in [name for name in sys.modules if name.startswith(f"{registry.PLUGIN_PACKAGE}.")]:
        monkeypatch.delitem(sys.modules, name)
    registry.load_measurements()
    assert set(registry.registered()) == {"diagnosis", "resync", "intake", "soak"}
