"""The pure helpers of the bench's extra measurements (scripts/bench/measurements/). No timing here."""

from __future__ import annotations

import pytest

from scripts.bench.measurements.diagnosis import ExchangeResult, _figures, dependent_round_trips
from scripts.bench.measurements.intake import parse_ready_line
from scripts.bench.measurements.resync import (
    changed_at_exchange,
    edited,
    parse_sizes,
    read_status_kib,
)
from scripts.bench.registry import load_measurements, registered


class TestDependentRoundTrips:
    def test_no_requests(self) -> None:
        assert dependent_round_trips([]) == 0

    def test_gate_then_concurrent_group_is_two(self) -> None:
        assert dependent_round_trips([(0.0, 0.2), (0.201, 0.41), (0.202, 0.45)]) == 2

    def test_sequential_calls_count_each(self) -> None:
        assert dependent_round_trips([(0.0, 0.2), (0.2, 0.4), (0.41, 0.6)]) == 3

    def test_fully_concurrent_is_one(self) -> None:
        assert dependent_round_trips([(0.0, 0.2), (0.0, 0.21), (0.001, 0.2)]) == 1

    def test_order_of_the_input_does_not_matter(self) -> None:
        spans = [(0.45, 0.65), (0.0, 0.2), (0.21, 0.44), (0.22, 0.43)]
        assert dependent_round_trips(spans) == dependent_round_trips(list(reversed(spans))) == 3

    def test_a_long_call_overlapping_a_chain_does_not_shorten_it(self) -> None:
        # A slow call running alongside two calls in a row: the chain of two is the critical path.
        assert dependent_round_trips([(0.0, 0.5), (0.0, 0.2), (0.2, 0.4)]) == 2

    def test_answer_before_send_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            dependent_round_trips([(1.0, 0.5)])


class TestDiagnosisFigures:
    def result(self, exchange: str, single: float, chain: int, parallel: float) -> ExchangeResult:
        return ExchangeResult(
            exchange, single_s=[single], requests=[chain], chains=[chain], parallel_s=[parallel]
        )

    def test_ratios_and_worst_case(self) -> None:
        results = [self.result("kraken", 0.42, 2, 0.5), self.result("okx", 0.5, 2, 1.0)]
        assert results[0].latency_ratio == pytest.approx(1.05)
        assert results[1].parallel_ratio == pytest.approx(2.0)
        figures = {f.name: f for f in _figures(results, skipped=[])}
        worst = [f for name, f in figures.items() if name.startswith("worst one")]
        assert len(worst) == 1 and "okx" in worst[0].name and worst[0].keymedic == pytest.approx(1.25)
        assert figures["diagnoses that did not pass, all runs"].keymedic == 0

    def test_skipped_exchanges_are_noted(self) -> None:
        figures = _figures([self.result("kraken", 0.42, 2, 0.5)], skipped=["gemini"])
        assert any("gemini" in f.note for f in figures)


class TestResyncHelpers:
    def test_parse_sizes_sorts_and_accepts_underscores(self) -> None:
        assert parse_sizes("100_000, 10000") == (10_000, 100_000)

    @pytest.mark.parametrize("text", ["", "10000", "1,2,3", "0,10", "a,b", "10,10", "-1,5"])
    def test_parse_sizes_refuses(self, text: str) -> None:
        with pytest.raises(ValueError):
            parse_sizes(text)

    def test_read_status_kib(self) -> None:
        status = "Name:\tpython\nVmHWM:\t  123456 kB\nVmRSS:\t   99999 kB\n"
        assert read_status_kib(status, "VmHWM") == 123456
        assert read_status_kib(status, "VmRSS") == 99999
        with pytest.raises(KeyError):
            read_status_kib(status, "VmSwap")

    def test_edit_and_change_proportions(self) -> None:
        assert sum(edited(n) for n in range(100_000)) == 5_000
        assert sum(changed_at_exchange(n) for n in range(100_000)) == 10_000


class TestIntakeHelpers:
    def test_ready_line(self) -> None:
        assert parse_ready_line("web ready on http://127.0.0.1:43125\n") == "http://127.0.0.1:43125"

    @pytest.mark.parametrize(
        "line", ["", "starting", "web ready on http://0.0.0.0:80", "web ready on http://example.com:80"]
    )
    def test_other_lines(self, line: str) -> None:
        assert parse_ready_line(line) is None


def test_the_three_measurements_register() -> None:
    load_measurements()
    assert {"diagnosis", "resync", "intake"} <= set(registered())
