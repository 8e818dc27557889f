"""The report's arithmetic, pure: percentiles, rank correlation, ETA accuracy.

Nothing here does I/O or reads a clock, so each figure of the report can be
checked with known inputs (``tests/unit/test_onsale_stats.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with ``fraction`` at or below.

    ``nan`` for no values. p50 of 1..100 is 50, p99 is 99, p999 is 100.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``; ties share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for position in range(start, end + 1):
            result[order[position]] = shared
        start = end + 1
    return result


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's correlation; ``nan`` for fewer than two pairs or no spread."""
    if len(xs) != len(ys):
        raise ValueError("pearson needs pairs")
    n = len(xs)
    if n < 2:
        return math.nan
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = sum((x - mean_x) ** 2 for x in xs)
    var_y = sum((y - mean_y) ** 2 for y in ys)
    if var_x == 0 or var_y == 0:
        return math.nan
    return cov / math.sqrt(var_x * var_y)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's of the tie-averaged ranks)."""
    return pearson(ranks(xs), ranks(ys))


@dataclass(frozen=True, slots=True)
class EtaSample:
    """One queue status answer: when it was given, the ETA it gave, and when
    the visitor was in fact admitted (epoch seconds; ``None``: never)."""

    at: float
    predicted_seconds: float
    admitted_at: float | None

    @property
    def actual_seconds(self) -> float | None:
        """How long the visitor still waited after this answer."""
        return None if self.admitted_at is None else self.admitted_at - self.at


@dataclass(frozen=True, slots=True)
class EtaAccuracy:
    """How far the room's ETAs were from the waits that followed them."""

    samples: int
    median_abs_error_seconds: float
    p90_abs_error_seconds: float
    median_error_seconds: float
    """Actual minus predicted: positive when the room promised too short."""
    within_half: float
    """Share of answers whose actual wait was within ±50 % of the ETA (±2 s)."""


def eta_accuracy(samples: Iterable[EtaSample]) -> EtaAccuracy:
    """Accuracy over the samples whose visitor was admitted."""
    errors = [
        actual - s.predicted_seconds
        for s in samples
        if (actual := s.actual_seconds) is not None
    ]
    if not errors:
        return EtaAccuracy(0, math.nan, math.nan, math.nan, math.nan)
    absolute = [abs(e) for e in errors]
    good = 0
    for s in samples:
        actual = s.actual_seconds
        if actual is not None:
            good += abs(actual - s.predicted_seconds) <= max(
                2.0, 0.5 * s.predicted_seconds
            )
    return EtaAccuracy(
        samples=len(errors),
        median_abs_error_seconds=percentile(absolute, 0.5),
        p90_abs_error_seconds=percentile(absolute, 0.9),
        median_error_seconds=percentile(errors, 0.5),
        within_half=good / len(errors),
    )


@dataclass(frozen=True, slots=True)
class BotShare:
    """Bots' share of what was sold beside their share of what was sent."""

    traffic: float
    """Share of the HTTP requests that bots sent."""
    sessions: float
    """Share of the visitors that were bot sessions."""
    tickets: float
    """Share of the places sold that bots bought."""


def bot_share(
    bot_requests: int,
    all_requests: int,
    bot_sessions: int,
    all_sessions: int,
    bot_places: int,
    all_places: int,
) -> BotShare:
    """The three shares; a share of nothing is 0."""
    return BotShare(
        traffic=_share(bot_requests, all_requests),
        sessions=_share(bot_sessions, all_sessions),
        tickets=_share(bot_places, all_places),
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def per_second(
    times: Iterable[float], origin: float, seconds: int, weights: Iterable[int] = ()
) -> list[int]:
    """Counts per whole second after ``origin`` (``weights`` default to 1 each);
    times outside ``[origin, origin + seconds)`` are left out."""
    counts = [0] * max(0, seconds)
    weight_list = list(weights)
    for index, at in enumerate(times):
        slot = math.floor(at - origin)
        if 0 <= slot < seconds:
            counts[slot] += weight_list[index] if weight_list else 1
    return counts


def waiting_per_second(
    spans: Iterable[tuple[float, float | None]], origin: float, seconds: int
) -> list[int]:
    """Visitors in the queue at the start of each second: joined, not yet let in.

    ``spans`` are (joined at, admitted at or ``None`` for never).
    """
    changes = [0] * (max(0, seconds) + 1)
    for joined, admitted in spans:
        first = max(0, math.ceil(joined - origin))
        end = seconds if admitted is None else math.ceil(admitted - origin)
        end = min(seconds, end)
        if first < end:
            changes[first] += 1
            changes[end] -= 1
    waiting, level = [], 0
    for slot in range(max(0, seconds)):
        level += changes[slot]
        waiting.append(level)
    return waiting


def eta_per_bucket(
    samples: Iterable[EtaSample], origin: float, bucket_seconds: float, buckets: int
) -> list[tuple[float, float] | None]:
    """Median (predicted, actual) wait of the answers given in each bucket."""
    grouped: list[tuple[list[float], list[float]]] = [([], []) for _ in range(buckets)]
    for sample in samples:
        actual = sample.actual_seconds
        slot = math.floor((sample.at - origin) / bucket_seconds)
        if actual is not None and 0 <= slot < buckets:
            grouped[slot][0].append(sample.predicted_seconds)
            grouped[slot][1].append(actual)
    return [
        (percentile(predicted, 0.5), percentile(actual, 0.5)) if predicted else None
        for predicted, actual in grouped
    ]
