"""The availability fold: counts per section, ordered and idempotent by position."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.model import (
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    RejectionReason,
    SectionCreated,
    SectionKind,
    SectionRejected,
)
from infra.topics import partition_for
from projections.availability import AvailabilityFold, SectionAvailability
from projections.store import write_timestamp

PARTITIONS = 4

Record = tuple[int, int, list[Event]]
"""(partition, offset, events) of one Kafka record."""


def created(section: str = "A", capacity: int = 10) -> SectionCreated:
    return SectionCreated(
        "c0", 1, "show-1", section, SectionKind.GENERAL_ADMISSION, capacity, 600
    )


def placed(hold: str, quantity: int, section: str = "A") -> HoldPlaced:
    return HoldPlaced("c1", 2, hold, "show-1", section, "buyer", (), quantity, 9)


def expired(hold: str, quantity: int, section: str = "A") -> HoldExpired:
    return HoldExpired("c2", 3, hold, "show-1", section, (), quantity)


def rejected(section: str = "A") -> HoldRejected:
    return HoldRejected(
        "c3", 4, "show-1", section, "buyer", RejectionReason.SOLD_OUT, "no"
    )


def snapshot(fold: AvailabilityFold) -> dict[tuple[str, str], SectionAvailability]:
    return {row.key: dataclasses.replace(row) for row in fold.rows()}


def fold_records(fold: AvailabilityFold, records: Sequence[Record]) -> None:
    for partition, offset, events in records:
        for index, event in enumerate(events):
            fold.apply(event, partition, offset, index)


def test_section_created_makes_a_free_row_when_new() -> None:
    fold = AvailabilityFold()

    applied = fold.apply(created(capacity=10), partition=2, offset=5)

    row = fold.row("show-1", "A")
    assert applied
    assert row is not None
    assert (row.capacity, row.held, row.sold, row.free) == (10, 0, 0, 10)
    assert (row.log_partition, row.log_offset, row.log_index) == (2, 5, 0)


def test_holds_move_held_and_free_when_placed_then_expired() -> None:
    fold = AvailabilityFold()

    fold.apply(created(capacity=10), 0, 1)
    fold.apply(placed("h1", 3), 0, 2)
    fold.apply(placed("h2", 4), 0, 3)
    fold.apply(expired("h1", 3), 0, 4)

    row = fold.row("show-1", "A")
    assert row is not None
    assert (row.held, row.free, row.log_offset) == (4, 6, 4)


def test_events_of_one_record_all_apply_when_they_share_an_offset() -> None:
    fold = AvailabilityFold()

    fold.apply(created(capacity=10), 0, 7, index=0)
    fold.apply(placed("h1", 1), 0, 7, index=1)
    fold.apply(placed("h2", 2), 0, 7, index=2)

    row = fold.row("show-1", "A")
    assert row is not None
    assert (row.held, row.log_offset, row.log_index) == (3, 7, 2)


def test_apply_is_skipped_when_the_offset_is_not_newer() -> None:
    fold = AvailabilityFold()
    fold.apply(created(), 0, 1)
    fold.apply(placed("h1", 2), 0, 5)

    again = fold.apply(placed("h1", 2), 0, 5)
    older = fold.apply(placed("h0", 1), 0, 3)

    row = fold.row("show-1", "A")
    assert not again
    assert not older
    assert row is not None
    assert (row.held, row.log_offset) == (2, 5)


def test_refusals_leave_the_row_alone_when_the_section_exists() -> None:
    fold = AvailabilityFold()
    fold.apply(created(capacity=4), 0, 1)
    fold.dirty_rows()

    fold.apply(rejected(), 0, 2)
    reason = RejectionReason.SECTION_EXISTS
    fold.apply(SectionRejected("c4", 5, "show-1", "A", reason), 0, 3)

    row = fold.row("show-1", "A")
    assert row is not None
    assert (row.held, row.free, row.log_offset) == (0, 4, 1)
    assert fold.dirty_rows() == []


def test_ledger_refusal_on_another_partition_does_not_hide_later_holds() -> None:
    fold = AvailabilityFold()
    fold.apply(created(capacity=4), 0, 1)

    # The buyers' ledger lives on partition 5, far ahead in offsets.
    fold.apply(rejected(), 5, 900)
    fold.apply(placed("h1", 2), 0, 2)

    row = fold.row("show-1", "A")
    assert row is not None
    assert (row.held, row.free) == (2, 2)


def test_refusals_create_no_row_when_the_section_is_unknown() -> None:
    fold = AvailabilityFold()

    applied = fold.apply(rejected("Z"), 0, 1)

    assert not applied
    assert fold.rows() == []
    assert fold.orphan_events == 0


def test_holds_are_counted_as_orphans_when_the_section_is_unknown() -> None:
    fold = AvailabilityFold()

    fold.apply(placed("h1", 2, section="Z"), 0, 1)

    assert fold.rows() == []
    assert fold.orphan_events == 1


def test_dirty_rows_returns_each_changed_row_once_when_called() -> None:
    fold = AvailabilityFold()
    fold.apply(created("A"), 0, 1)
    fold.apply(created("B"), 1, 1)
    fold.apply(placed("h1", 1, "A"), 0, 2)

    first = fold.dirty_rows()
    second = fold.dirty_rows()

    assert sorted(row.section_id for row in first) == ["A", "B"]
    assert second == []


def test_restored_rows_skip_replayed_events_when_loaded_from_the_store() -> None:
    first = AvailabilityFold()
    fold_records(first, [(0, 1, [created()]), (0, 2, [placed("h1", 2)])])
    restarted = AvailabilityFold(snapshot(first).values())

    fold_records(restarted, [(0, 1, [created()]), (0, 2, [placed("h1", 2)])])
    fold_records(restarted, [(0, 3, [placed("h2", 1)])])

    row = restarted.row("show-1", "A")
    assert row is not None
    assert (row.held, row.log_offset) == (3, 3)
    assert restarted.dirty_rows() == [row]


def test_forget_partitions_drops_only_their_rows() -> None:
    fold = AvailabilityFold()
    fold.apply(created("A"), 0, 1)
    fold.apply(created("B"), 1, 1)

    fold.forget_partitions([0])

    assert [row.section_id for row in fold.rows()] == ["B"]


def test_write_timestamps_order_like_positions() -> None:
    positions = [(0, 0), (0, 1), (0, 5000), (1, 0), (2, 3), (10**9, 0)]

    stamps = [write_timestamp(offset, index) for offset, index in positions]

    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


# --- properties: replay and redelivery change nothing ------------------------------

SECTIONS = [("show-1", "A"), ("show-1", "B"), ("show-2", "A")]


@st.composite
def logs(draw: st.DrawFn) -> list[Record]:
    """A plausible event log cut into records, each on its section's partition."""
    steps = draw(
        st.lists(
            st.tuples(st.sampled_from(SECTIONS), st.integers(0, 3), st.integers(1, 4)),
            max_size=60,
        )
    )
    created_keys: set[tuple[str, str]] = set()
    open_holds: dict[tuple[str, str], list[tuple[str, int]]] = {}
    events: list[Event] = []
    for n, ((show, section), action, quantity) in enumerate(steps):
        key = (show, section)
        holds = open_holds.setdefault(key, [])
        if key not in created_keys:
            created_keys.add(key)
            events.append(
                SectionCreated(
                    "c", n, show, section, SectionKind.GENERAL_ADMISSION, 20, 60
                )
            )
        elif action == 0:
            holds.append((f"h{n}", quantity))
            events.append(
                HoldPlaced("c", n, f"h{n}", show, section, "b", (), quantity, n + 60)
            )
        elif action == 1 and holds:
            hold, held = holds.pop(0)
            events.append(HoldExpired("c", n, hold, show, section, (), held))
        else:
            reason = RejectionReason.SOLD_OUT
            events.append(HoldRejected("c", n, show, section, "b", reason, "x"))
    return _cut_into_records(draw, events)


def _cut_into_records(draw: st.DrawFn, events: list[Event]) -> list[Record]:
    """Group consecutive events of one partition into records with rising offsets."""
    next_offset = dict.fromkeys(range(PARTITIONS), 0)
    records: list[Record] = []
    for event in events:
        partition = partition_for(f"{event.show_id}/{event.section_id}", PARTITIONS)
        last = records[-1] if records else None
        if last is not None and last[0] == partition and draw(st.booleans()):
            last[2].append(event)
            continue
        offset = next_offset[partition] + draw(st.integers(0, 2))  # commit markers
        next_offset[partition] = offset + 1
        records.append((partition, offset, [event]))
    return records


@settings(max_examples=200, deadline=None)
@given(logs())
def test_rows_are_the_same_when_the_log_is_redelivered(log: list[Record]) -> None:
    once, twice = AvailabilityFold(), AvailabilityFold()

    fold_records(once, log)
    fold_records(twice, log)
    fold_records(twice, log)

    assert snapshot(twice) == snapshot(once)


@settings(max_examples=200, deadline=None)
@given(logs(), st.data())
def test_rows_are_the_same_when_a_prefix_is_replayed(
    log: list[Record], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    once, replayed = AvailabilityFold(), AvailabilityFold()

    fold_records(once, log)
    fold_records(replayed, log[:cut])
    fold_records(replayed, log)

    assert snapshot(replayed) == snapshot(once)


@settings(max_examples=200, deadline=None)
@given(logs(), st.data())
def test_rows_are_the_same_when_restored_and_resumed_from_older_offsets(
    log: list[Record], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    resume = data.draw(st.integers(0, cut))
    once, before = AvailabilityFold(), AvailabilityFold()
    fold_records(once, log)
    fold_records(before, log[:cut])

    restarted = AvailabilityFold(snapshot(before).values())
    fold_records(restarted, log[resume:])

    assert snapshot(restarted) == snapshot(once)
    for row in restarted.rows():
        assert row.free == row.capacity - row.held - row.sold
        assert row.held >= 0


@settings(max_examples=200, deadline=None)
@given(logs(), st.data())
def test_store_ends_with_the_latest_rows_when_flushes_arrive_out_of_order(
    log: list[Record], data: st.DataObject
) -> None:
    fold = AvailabilityFold()
    writes: list[tuple[int, SectionAvailability]] = []
    for record in log:
        fold_records(fold, [record])
        if data.draw(st.booleans()):
            writes += [
                (write_timestamp(r.log_offset, r.log_index), dataclasses.replace(r))
                for r in fold.dirty_rows()
            ]
    writes += [
        (write_timestamp(r.log_offset, r.log_index), dataclasses.replace(r))
        for r in fold.dirty_rows()
    ]

    store: dict[tuple[str, str], tuple[int, SectionAvailability]] = {}
    for stamp, row in data.draw(st.permutations(writes)):
        if row.key not in store or stamp > store[row.key][0]:
            store[row.key] = (stamp, row)

    assert {key: row for key, (_, row) in store.items()} == snapshot(fold)
