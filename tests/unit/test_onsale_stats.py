"""The on-sale report's arithmetic, checked with inputs whose answers are known."""

from __future__ import annotations

import math

import pytest

from infra.onsale.stats import (
    EtaSample,
    bot_share,
    eta_accuracy,
    eta_per_bucket,
    per_second,
    percentile,
    ranks,
    spearman,
    waiting_per_second,
)


def test_percentile_is_the_nearest_rank_when_values_are_one_to_a_hundred() -> None:
    values = [float(v) for v in range(100, 0, -1)]

    found = [percentile(values, q) for q in (0.5, 0.99, 0.999, 1.0)]

    assert found == [50.0, 99.0, 100.0, 100.0]


def test_percentile_of_a_thousand_values_separates_p99_from_p999() -> None:
    values = [float(v) for v in range(1, 1001)]

    assert (percentile(values, 0.99), percentile(values, 0.999)) == (990.0, 999.0)


def test_percentile_is_nan_when_there_are_no_values() -> None:
    assert math.isnan(percentile([], 0.5))


def test_ranks_share_the_mean_rank_when_values_tie() -> None:
    assert ranks([10.0, 20.0, 20.0, 5.0]) == [2.0, 3.5, 3.5, 1.0]


def test_spearman_is_one_when_the_order_is_kept_whatever_the_scale() -> None:
    assert spearman([1, 2, 3, 4], [10, 100, 1000, 10000]) == pytest.approx(1.0)


def test_spearman_is_minus_one_when_the_order_is_reversed() -> None:
    assert spearman([1, 2, 3, 4, 5], [9, 7, 5, 3, 1]) == pytest.approx(-1.0)


def test_spearman_matches_the_textbook_formula_when_there_are_no_ties() -> None:
    xs, ys = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    # 1 - 6 * sum(d^2) / (n (n^2 - 1)) with d = (-1, 1, -1, 1, 0): 1 - 24/120.

    assert spearman(xs, ys) == pytest.approx(0.8)


def test_spearman_is_nan_when_one_side_has_no_spread() -> None:
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    assert math.isnan(spearman([1], [2]))


def test_eta_accuracy_compares_each_eta_with_the_wait_that_followed() -> None:
    samples = [
        EtaSample(at=100.0, predicted_seconds=10.0, admitted_at=110.0),  # exact
        EtaSample(at=100.0, predicted_seconds=10.0, admitted_at=130.0),  # +20 s
        EtaSample(at=105.0, predicted_seconds=20.0, admitted_at=115.0),  # -10 s
        EtaSample(at=100.0, predicted_seconds=5.0, admitted_at=None),  # never let in
    ]

    accuracy = eta_accuracy(samples)

    assert accuracy.samples == 3
    assert accuracy.median_abs_error_seconds == 10.0
    assert accuracy.p90_abs_error_seconds == 20.0
    assert accuracy.median_error_seconds == 0.0
    assert accuracy.within_half == pytest.approx(2 / 3)


def test_eta_accuracy_has_no_figures_when_nobody_was_admitted() -> None:
    accuracy = eta_accuracy([EtaSample(1.0, 3.0, None)])

    assert accuracy.samples == 0
    assert math.isnan(accuracy.median_abs_error_seconds)


def test_eta_per_bucket_gives_median_eta_and_wait_of_each_bucket() -> None:
    samples = [
        EtaSample(at=1.0, predicted_seconds=4.0, admitted_at=9.0),
        EtaSample(at=2.0, predicted_seconds=6.0, admitted_at=8.0),
        EtaSample(at=3.0, predicted_seconds=8.0, admitted_at=13.0),
        EtaSample(at=11.0, predicted_seconds=1.0, admitted_at=12.0),
    ]

    buckets = eta_per_bucket(samples, origin=0.0, bucket_seconds=5.0, buckets=3)

    assert buckets == [(6.0, 8.0), None, (1.0, 1.0)]


def test_bot_share_sets_tickets_beside_traffic_and_sessions() -> None:
    share = bot_share(
        bot_requests=300,
        all_requests=1000,
        bot_sessions=10,
        all_sessions=100,
        bot_places=5,
        all_places=50,
    )

    assert (share.traffic, share.sessions, share.tickets) == (0.3, 0.1, 0.1)


def test_bot_share_is_zero_when_nothing_was_sold() -> None:
    share = bot_share(1, 2, 1, 2, 0, 0)

    assert share.tickets == 0.0


def test_per_second_counts_and_weights_each_second_after_the_origin() -> None:
    times = [10.2, 10.9, 11.5, 9.9, 14.0]

    assert per_second(times, origin=10.0, seconds=3) == [2, 1, 0]
    weighted = per_second(times, 10.0, 3, weights=[2, 3, 4, 5, 6])
    assert weighted == [5, 4, 0]


def test_waiting_per_second_counts_who_joined_and_was_not_yet_admitted() -> None:
    spans = [(0.0, 2.5), (1.0, None), (1.5, 1.8), (3.2, 4.0)]

    assert waiting_per_second(spans, origin=0.0, seconds=5) == [1, 2, 2, 1, 1]
