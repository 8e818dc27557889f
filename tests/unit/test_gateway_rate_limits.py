"""GCRA token buckets: burst, refill, boundaries and clock jumps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.rate_limits import MICROS, Limit, LocalBuckets, take


def run(limit: Limit, times_s: list[float]) -> list[bool]:
    """Which requests at these times a fresh bucket lets in."""
    buckets = LocalBuckets(limit)
    return [buckets.take("k", round(t * MICROS)).allowed for t in times_s]


def test_a_full_bucket_lets_its_capacity_through_at_once_then_refuses() -> None:
    assert run(Limit(3, 1.0), [0, 0, 0, 0]) == [True, True, True, False]


def test_one_token_comes_back_per_interval_and_not_a_microsecond_before() -> None:
    buckets = LocalBuckets(Limit(1, 2.0))
    buckets.take("k", 0)

    assert not buckets.take("k", 499_999).allowed
    assert buckets.take("k", 500_000).allowed


def test_the_retry_after_is_the_time_to_the_next_token_rounded_up() -> None:
    buckets = LocalBuckets(Limit(1, 0.2))
    buckets.take("k", 0)

    verdict = buckets.take("k", 10_000)

    assert not verdict.allowed
    assert verdict.retry_after_us == 4_990_000
    assert verdict.retry_after_seconds == 5


def test_a_long_pause_refills_no_more_than_the_capacity() -> None:
    assert run(Limit(2, 1.0), [0, 0, 3600, 3600, 3600]) == [
        True,
        True,
        True,
        True,
        False,
    ]


def test_a_clock_jumping_backwards_mints_no_token() -> None:
    buckets = LocalBuckets(Limit(2, 1.0))
    buckets.take("k", 100 * MICROS)
    buckets.take("k", 100 * MICROS)

    assert not buckets.take("k", 0).allowed, "an hour back must not refill"
    assert not buckets.take("k", 100 * MICROS).allowed
    assert buckets.take("k", 101 * MICROS).allowed


def test_keys_have_buckets_of_their_own() -> None:
    buckets = LocalBuckets(Limit(1, 1.0))

    assert buckets.take("a", 0).allowed and buckets.take("b", 0).allowed
    assert not buckets.take("a", 0).allowed


def test_a_refused_request_leaves_the_bucket_as_it_was() -> None:
    limit = Limit(1, 1.0)
    first = take(limit, None, 0)

    refused = take(limit, first.tat_us, 10)

    assert not refused.allowed and refused.tat_us == first.tat_us


@given(
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=0.01, max_value=1000),
    st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=200),
)
def test_no_window_ever_lets_more_than_capacity_plus_refill_through(
    capacity: int, per_second: float, steps: list[int]
) -> None:
    limit = Limit(capacity, per_second)
    tat: int | None = None
    now = 0
    allowed_at: list[int] = []
    latest: int | None = None
    for step in steps:
        now += step  # the clock may jump either way
        verdict = take(limit, tat, now)
        latest = now if latest is None else max(latest, now)
        if verdict.allowed:
            tat = verdict.tat_us
            allowed_at.append(latest)

    # Measured on the latest clock seen: any span of T µs admits at most
    # capacity + T / interval requests.
    for i, start in enumerate(allowed_at):
        for j in range(i, len(allowed_at)):
            span = allowed_at[j] - start
            assert j - i + 1 <= capacity + span // limit.interval_us
