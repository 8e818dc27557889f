"""A restored table's cursor against the offset the group committed with it."""

from __future__ import annotations

from streams.continuity import Continuity


def _loaded(cursors: dict[int, int], stateful: set[int]) -> Continuity:
    continuity = Continuity()
    continuity.load(cursors, stateful)
    return continuity


def test_a_cursor_at_or_past_the_committed_offset_is_complete() -> None:
    continuity = _loaded({1: 40, 2: 41}, {1, 2})

    assert continuity.check_start(1, 40) is None
    assert continuity.check_start(2, 40) is None
    assert not continuity.needs_start_check(1)


def test_a_cursor_behind_the_committed_offset_means_a_restore_missed_entries() -> None:
    continuity = _loaded({1: 12}, {1})

    problem = continuity.check_start(1, 40)

    assert problem is not None and "12" in problem and "40" in problem


def test_no_cursor_and_no_state_while_the_group_committed_is_incomplete() -> None:
    continuity = _loaded({}, set())

    assert continuity.needs_start_check(3)
    assert continuity.check_start(3, 2614) is not None
    assert _loaded({}, set()).check_start(3, None) is None, "a fresh partition"


def test_a_table_from_before_cursors_is_trusted() -> None:
    continuity = _loaded({}, {4})

    assert not continuity.needs_start_check(4)
    assert continuity.check_start(4, 500) is None
