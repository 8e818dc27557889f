"""Waiting-room arithmetic: fair order, the leaky-bucket mark, positions, ETA."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.waiting_room import (
    EARLY_SLOT,
    RoomState,
    advance,
    eta_seconds,
    is_admitted,
    join_slot,
    lag_aware_rate,
    newest_key,
    poll_after_seconds,
    position,
    queue_key,
)

OPENS_MS = 1_000_000
ARRIVALS = 8
RUNS = 4000


def key_of(secret: bytes, ticket_id: str, joined_at_ms: int) -> float:
    return queue_key(secret, "show", ticket_id, joined_at_ms, OPENS_MS)


def admission_order(secret: bytes, tickets: list[tuple[str, int]]) -> list[str]:
    """Ticket ids in the order a rising mark lets them in."""
    return sorted(
        (t for t, _ in tickets), key=lambda t: key_of(secret, t, dict(tickets)[t])
    )


def chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


def test_early_arrivals_are_shuffled_uniformly_when_measured_over_many_runs() -> None:
    # Arrival i joined i seconds before opening; a fresh secret per run (a sale).
    place_of_arrival: list[Counter[int]] = [Counter() for _ in range(ARRIVALS)]
    rng = random.Random(4)
    for _ in range(RUNS):
        secret = rng.randbytes(16)
        tickets = [
            (f"t{rng.getrandbits(64):x}", OPENS_MS - 1000 * (ARRIVALS - i))
            for i in range(ARRIVALS)
        ]
        order = admission_order(secret, tickets)
        for arrival, (ticket_id, _) in enumerate(tickets):
            place_of_arrival[arrival][order.index(ticket_id)] += 1

    # 7 degrees of freedom: chi-square above 24.3 has probability 0.001.
    for arrival, places in enumerate(place_of_arrival):
        counts = [places[p] for p in range(ARRIVALS)]
        assert chi_square(counts) < 24.3, f"arrival {arrival} is not uniform: {counts}"


def test_late_arrivals_are_admitted_in_arrival_order_whatever_their_ids() -> None:
    rng = random.Random(5)
    for _ in range(200):
        secret = rng.randbytes(16)
        tickets = [(f"t{rng.getrandbits(64):x}", OPENS_MS + 7 * i) for i in range(20)]

        assert admission_order(secret, tickets) == [t for t, _ in tickets]


def test_every_early_arrival_is_admitted_before_any_late_one() -> None:
    secret = b"s" * 16
    early = [key_of(secret, f"e{i}", OPENS_MS - 1) for i in range(500)]
    late = key_of(secret, "late", OPENS_MS)

    assert max(early) < 1.0 <= late


def test_the_order_is_the_same_at_every_instance_given_the_secret() -> None:
    tickets = [(f"t{i}", OPENS_MS - 5) for i in range(50)]

    assert admission_order(b"x" * 16, tickets) == admission_order(b"x" * 16, tickets)
    assert admission_order(b"x" * 16, tickets) != admission_order(b"y" * 16, tickets)


def room(**changes: object) -> RoomState:
    base = RoomState("show", OPENS_MS, admit_per_second=10.0, early_joins=100)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_nothing_is_admitted_before_the_sale_opens() -> None:
    before = room()

    assert advance(before, OPENS_MS - 1, 1000.0) == before


def test_the_mark_lets_rate_times_elapsed_people_through() -> None:
    after = advance(room(pumped_at_ms=OPENS_MS), OPENS_MS + 1000, 10.0)

    assert after.mark == pytest.approx(0.1)
    assert position(after, 0.5) == 40
    assert after.outflow_per_second == pytest.approx(10.0)


def test_the_mark_crosses_from_early_to_late_arrivals_by_their_counts() -> None:
    full = room(mark=0.95, pumped_at_ms=OPENS_MS + 9_000, late_joins={0: 10, 5: 20})

    after = advance(full, OPENS_MS + 10_000, 10.0)

    # 5 early people left, then 5 of the 10 who came in the first second.
    assert after.mark == pytest.approx(1.5)


def test_an_empty_stretch_is_skipped_but_never_past_the_newest_arrival() -> None:
    empty = room(early_joins=0, mark=0.0, pumped_at_ms=OPENS_MS + 60_000)

    after = advance(empty, OPENS_MS + 61_000, 10.0)

    assert after.mark == pytest.approx(newest_key(empty, OPENS_MS + 61_000))
    assert after.outflow_per_second == 0.0, "an empty room measures no outflow"


def test_a_clock_going_backwards_admits_nobody() -> None:
    pumped = room(mark=0.2, pumped_at_ms=OPENS_MS + 5_000)

    assert advance(pumped, OPENS_MS + 1_000, 10.0) == pumped


def test_a_long_gap_between_pumps_lets_no_burst_through() -> None:
    idle = room(early_joins=1000, pumped_at_ms=OPENS_MS)

    after = advance(idle, OPENS_MS + 600_000, 10.0, max_gap_ms=2_000)

    assert after.mark == pytest.approx(20 / 1000)


@given(
    st.integers(min_value=0, max_value=10_000),
    st.dictionaries(st.integers(0, 30), st.integers(0, 500), max_size=10),
    st.lists(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=30),
    st.floats(min_value=0.5, max_value=5_000),
)
def test_the_mark_only_rises_and_admits_at_most_the_rate(
    early: int, late: dict[int, int], steps: list[int], rate: float
) -> None:
    state = room(early_joins=early, late_joins=late, pumped_at_ms=OPENS_MS)
    now = OPENS_MS
    for step in steps:
        now += step
        after = advance(state, now, rate)
        admitted = _people(state, state.mark, after.mark)

        assert after.mark >= state.mark
        assert admitted <= rate * min(step, 2_000) / 1000 + 1e-6 * (1 + admitted)
        assert after.mark <= max(state.mark, newest_key(state, now)) + 1e-9
        state = after


def _people(state: RoomState, low: float, high: float) -> float:
    from gateway.waiting_room import people_between

    return people_between(state, low, high)


def test_position_and_eta_come_from_the_counts_and_the_outflow() -> None:
    waiting = room(mark=0.25, outflow_per_second=5.0)

    ahead = position(waiting, 0.75)

    assert ahead == 50
    assert eta_seconds(waiting, ahead) == 10
    assert position(waiting, 0.1) == 0 and is_admitted(waiting, 0.1)


def test_clients_poll_rarely_far_from_the_door_and_often_near_it() -> None:
    waiting = room()

    assert poll_after_seconds(waiting, OPENS_MS + 1, eta=600) == 30
    assert poll_after_seconds(waiting, OPENS_MS + 1, eta=8) == 2
    assert poll_after_seconds(waiting, OPENS_MS + 1, eta=0) == 1
    assert poll_after_seconds(waiting, OPENS_MS - 10_000, eta=0) == 5


def test_join_slots_put_every_early_arrival_in_one_slot() -> None:
    assert join_slot(OPENS_MS - 1, OPENS_MS) == EARLY_SLOT
    assert join_slot(OPENS_MS, OPENS_MS) == 0
    assert join_slot(OPENS_MS + 2_500, OPENS_MS) == 2


def test_the_outflow_shrinks_with_lag_between_target_and_shedding_bound() -> None:
    assert lag_aware_rate(100, 0.2, 0.5, 5.0) == 100
    assert lag_aware_rate(100, 2.75, 0.5, 5.0) == pytest.approx(55)
    assert lag_aware_rate(100, 9.0, 0.5, 5.0) == pytest.approx(10)
