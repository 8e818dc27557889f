"""Recovery times read off a series of successes around a fault."""

from __future__ import annotations

from bench.fault_load import recovery


def test_recovery_counts_from_the_repair_to_the_first_success_and_the_rate() -> None:
    before = [n / 4 for n in range(40)]  # 4 a second for 10 s
    slow = [20.0, 21.0]  # a trickle after the repair at 15 s
    back = [22 + n / 4 for n in range(40)]  # 4 a second again from 22 s

    found = recovery(before + slow + back, (0.0, 10.0), (10.0, 15.0), 40.0)

    assert found.baseline_per_second == 4.0
    assert found.during_per_second == 0.0
    assert found.first_success_seconds == 5.0
    assert found.rate_recovered_seconds is not None
    assert 6.0 <= found.rate_recovered_seconds <= 7.1


def test_an_answer_sent_before_the_repair_is_not_the_first_success() -> None:
    done = [15.2, 30.0]
    sent = [9.0, 29.5]

    found = recovery(done, (0.0, 10.0), (10.0, 15.0), 40.0, first_after=sent)

    assert found.first_success_seconds == 14.5


def test_a_rate_that_never_comes_back_has_no_recovery_time() -> None:
    before = [n / 4 for n in range(40)]

    found = recovery([*before, 20.0], (0.0, 10.0), (10.0, 15.0), 40.0)

    assert found.rate_recovered_seconds is None
    assert found.first_success_seconds == 5.0
