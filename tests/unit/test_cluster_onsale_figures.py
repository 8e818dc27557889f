"""The figures of the broker-kill bench: the pause and the holds in flight."""

from __future__ import annotations

from bench.cluster_onsale import Timed, in_flight_at, longest_silence, timeline


def test_longest_silence_is_the_widest_gap_between_answers_after_the_kill() -> None:
    results = [Timed("held", 0.0, t) for t in (9.0, 11.0, 12.0, 30.0, 31.0)]

    silence = longest_silence(results, since=10.0)

    assert silence == 18.0


def test_longest_silence_counts_from_the_kill_to_the_first_answer() -> None:
    results = [Timed("held", 0.0, 25.0)]

    silence = longest_silence(results, since=10.0)

    assert silence == 15.0


def test_holds_in_flight_are_those_asked_before_and_answered_after_the_kill() -> None:
    asked_before = Timed("held", 5.0, 15.0)
    answered_before = Timed("held", 1.0, 4.0)
    asked_after = Timed("held", 12.0, 13.0)

    caught = in_flight_at([asked_before, answered_before, asked_after], 10.0)

    assert caught == [asked_before]


def test_timeline_marks_the_kill_after_two_intervals() -> None:
    results = [Timed("held", 0.0, t) for t in (1.0, 6.0, 11.0, 12.0, 26.0)]

    line = timeline(results, killed_at=10.0)

    assert line == "1 1 | 2 0 0 1"
