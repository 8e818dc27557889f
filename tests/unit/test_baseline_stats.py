"""The arithmetic of the baselines benchmark: percentiles, oversold, ratios."""

from __future__ import annotations

import asyncio
import math

import pytest

from bench.baseline_load import drive
from bench.baseline_stats import (
    DesignResult,
    Workload,
    figures,
    percentile,
    ratio,
    table,
)


def _result(design: str, **changes: object) -> DesignResult:
    values: dict[str, object] = {
        "design": design,
        "attempted": 30,
        "placed": 10,
        "rejected": 20,
        "errors": 0,
        "stored_holds": 10,
        "capacity": 10,
        "seconds": 2.0,
        "latencies_seconds": tuple(n / 1000 for n in range(1, 101)),
    }
    values.update(changes)
    return DesignResult(**values)  # type: ignore[arg-type]


def test_percentile_is_the_nearest_rank_when_values_are_many() -> None:
    values = [float(n) for n in range(100, 0, -1)]

    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def test_percentile_is_nan_when_there_are_no_values() -> None:
    assert math.isnan(percentile([], 99))


def test_percentile_refuses_a_rank_outside_the_range() -> None:
    with pytest.raises(ValueError, match="rank"):
        percentile([1.0], 0)


def test_oversold_counts_stored_holds_when_clients_saw_fewer() -> None:
    result = _result("x", placed=10, stored_holds=12)

    assert result.oversold == 2


def test_oversold_is_zero_when_placed_matches_capacity() -> None:
    assert _result("x").oversold == 0


def test_ratio_is_nan_when_ours_is_zero() -> None:
    assert math.isnan(ratio(5.0, 0.0))
    assert ratio(6.0, 3.0) == 2.0


def test_figures_give_ratios_to_ours_when_ours_ran() -> None:
    ours = _result("ours", seconds=3.0)
    other = _result("other", seconds=1.0, latencies_seconds=(0.004,) * 10)

    row = figures(other, ours)

    assert row["holds_per_second"] == 30.0
    assert row["throughput_ratio_to_ours"] == 3.0
    assert row["p99_ms"] == 4.0
    assert row["p99_ratio_to_ours"] == pytest.approx(4.0 / 99.0, abs=1e-3)


def test_figures_have_no_ratio_when_ours_did_not_run() -> None:
    row = figures(_result("other"), None)

    assert row["throughput_ratio_to_ours"] is None
    assert row["p99_ratio_to_ours"] is None


def test_table_has_a_line_per_design() -> None:
    text = table([_result("postgres"), _result("ours")], _result("ours"))

    assert [line.split()[0] for line in text.splitlines()[2:]] == ["postgres", "ours"]


async def test_drive_answers_every_buyer_once_when_time_allows() -> None:
    asked: list[int] = []

    async def request(buyer: int) -> bool:
        await asyncio.sleep(0)
        asked.append(buyer)
        return buyer < 7

    outcome = await drive(request, Workload(7, 20, 4, 10.0))

    assert sorted(asked) == list(range(20))
    assert (outcome.placed, outcome.rejected, outcome.errors) == (7, 13, 0)
    assert len(outcome.latencies_seconds) == 20


async def test_drive_counts_failures_when_a_request_raises() -> None:
    async def request(buyer: int) -> bool:
        if buyer % 2:
            raise ConnectionError("down")
        return True

    outcome = await drive(request, Workload(10, 10, 2, 10.0))

    assert (outcome.placed, outcome.errors) == (5, 5)
    assert "ConnectionError" in outcome.first_error
