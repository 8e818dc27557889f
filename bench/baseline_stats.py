"""Figures of one baseline run: percentiles, oversold, ratios to ours, the table.

Pure functions and records only (no I/O), so the arithmetic is tested on its own.
Latencies are in seconds; ratios divide a design's figure by ours, so a
throughput ratio above 1 means the design placed holds faster than ours and a
p99 ratio above 1 means its tail was slower.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    """What every design is given: N places, M buyers of one place, K clients."""

    places: int
    buyers: int
    clients: int
    time_limit_seconds: float


@dataclass(frozen=True)
class DesignResult:
    """What one design did with the workload.

    ``placed`` and ``rejected`` count the answers the clients got; ``stored_holds``
    is the number of holds the design's own state says it keeps, read after the
    run, so an oversell the clients did not see is still counted.
    """

    design: str
    attempted: int
    placed: int
    rejected: int
    errors: int
    stored_holds: int
    capacity: int
    seconds: float
    latencies_seconds: tuple[float, ...]
    note: str = ""

    @property
    def holds_per_second(self) -> float:
        """Answered hold requests (placed or rejected) per second of the run."""
        if self.seconds <= 0:
            return 0.0
        return (self.placed + self.rejected) / self.seconds

    @property
    def oversold(self) -> int:
        """Places held beyond the capacity, by answers or by stored state."""
        return max(0, self.placed - self.capacity, self.stored_holds - self.capacity)

    @property
    def p50_seconds(self) -> float:
        """Median latency of an answered request."""
        return percentile(self.latencies_seconds, 50)

    @property
    def p99_seconds(self) -> float:
        """99th percentile latency of an answered request."""
        return percentile(self.latencies_seconds, 99)


def percentile(values: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile of ``values`` (NaN when there are none)."""
    if not 0 < rank <= 100:
        raise ValueError(f"percentile rank must be in (0, 100], got {rank}")
    if not values:
        return math.nan
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


def ratio(value: float, ours: float) -> float:
    """``value / ours``; NaN when ours is zero or either side is unknown."""
    if ours == 0 or math.isnan(ours) or math.isnan(value):
        return math.nan
    return value / ours


def figures(result: DesignResult, ours: DesignResult | None) -> dict[str, object]:
    """The figures of one design as plain values, with its ratios to ours."""
    ours_tput = ours.holds_per_second if ours else math.nan
    ours_p99 = ours.p99_seconds if ours else math.nan
    return {
        "design": result.design,
        "attempted": result.attempted,
        "placed": result.placed,
        "rejected": result.rejected,
        "errors": result.errors,
        "stored_holds": result.stored_holds,
        "capacity": result.capacity,
        "oversold": result.oversold,
        "seconds": round(result.seconds, 3),
        "holds_per_second": round(result.holds_per_second, 1),
        "p50_ms": _ms(result.p50_seconds),
        "p99_ms": _ms(result.p99_seconds),
        "throughput_ratio_to_ours": _rounded(ratio(result.holds_per_second, ours_tput)),
        "p99_ratio_to_ours": _rounded(ratio(result.p99_seconds, ours_p99)),
        "note": result.note,
    }


def table(results: Sequence[DesignResult], ours: DesignResult | None) -> str:
    """A fixed-width text table of every design, ratios against ours."""
    header = (
        f"{'design':<12}{'answered':>10}{'placed':>8}{'oversold':>9}{'holds/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'x tput':>8}{'x p99':>8}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        row = figures(result, ours)
        lines.append(
            f"{result.design:<12}{result.placed + result.rejected:>10}"
            f"{result.placed:>8}{result.oversold:>9}"
            f"{result.holds_per_second:>10.0f}"
            f"{_cell(row['p50_ms'])}{_cell(row['p99_ms'])}"
            f"{_cell(row['throughput_ratio_to_ours'], 8)}"
            f"{_cell(row['p99_ratio_to_ours'], 8)}"
        )
    return "\n".join(lines)


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 2)


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def _cell(value: object, width: int = 9) -> str:
    if value is None:
        return f"{'-':>{width}}"
    assert isinstance(value, float | int)
    return f"{value:>{width}.2f}"
