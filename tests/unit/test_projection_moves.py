"""The availability read model is unchanged by a move, in any fold order."""

from __future__ import annotations

from commands.inventory import PartitionInventory, section_key
from commands.model import (
    Command,
    CreateShow,
    Event,
    HandOffSection,
    PlaceHold,
    RecordPaymentResult,
    SectionKind,
    SectionSpec,
)
from projections.availability import AvailabilityFold, log_position, route_epoch
from schemas.codec import ROUTE_EPOCH_HEADER

SHOW, GA = "show-1", "floor"
KEY = section_key(SHOW, GA)
Record = tuple[int, int, list[Event]]
"""(partition, position, events) of one event record."""


def _hold(n: int) -> PlaceHold:
    return PlaceHold(f"h{n}", 1000 + n, SHOW, GA, f"b{n}", quantity=1)


def _paid(n: int) -> RecordPaymentResult:
    return RecordPaymentResult(f"p{n}", 1100 + n, SHOW, GA, f"h{n}", f"e{n}", True)


def _decide(
    parts: list[PartitionInventory], at: int, command: Command, log: list[Record]
) -> None:
    """Decide at one partition as the agent does: events, then what it sends on."""
    inventory = parts[at]
    events = inventory.decide(command)
    if events:
        epoch = inventory.route_epoch(KEY)
        headers = [(ROUTE_EPOCH_HEADER, str(epoch).encode())] if epoch else []
        offset = sum(1 for p, _, _ in log if p == at) + 40 * (1 - at)
        log.append((at, log_position(offset, route_epoch(headers)), events))
    for target, sent in inventory.drain_sends():
        _decide(parts, target, sent, log)


def _sale_with_a_move() -> tuple[list[Record], list[Record]]:
    """The records of one sale with the section moved mid-way, and without."""
    create = CreateShow(
        "c",
        1000,
        SHOW,
        60,
        4,
        (SectionSpec(GA, SectionKind.GENERAL_ADMISSION, capacity=10),),
    )
    first = [create, _hold(1), _hold(2), _hold(3), _paid(1)]
    then = [_hold(4), _paid(2), _hold(5), _hold(2)]
    moved: list[Record] = []
    still: list[Record] = []
    parts = [PartitionInventory(partition=p) for p in range(2)]
    alone = [PartitionInventory(partition=0)]
    for command in first:
        _decide(parts, 0, command, moved)
        _decide(alone, 0, command, still)
    _decide(parts, 0, HandOffSection("mv", 1200, SHOW, GA, 1), moved)
    for n, command in enumerate(then):
        # Half the producers still send to the old owner, which forwards.
        _decide(parts, n % 2, command, moved)
        _decide(alone, 0, command, still)
    return moved, still


def _fold(records: list[Record]) -> tuple[int, int, int, int]:
    fold = AvailabilityFold()
    for partition, position, events in records:
        for index, event in enumerate(events):
            fold.apply(event, partition, position, index)
    row = fold.row(SHOW, GA)
    assert row is not None
    return row.capacity, row.held, row.sold, row.free


def test_availability_is_unchanged_by_a_move_when_folded_in_log_order() -> None:
    moved, still = _sale_with_a_move()

    assert _fold(moved) == _fold(still) == (10, 3, 2, 5)


def test_availability_is_unchanged_when_the_old_partition_is_folded_late() -> None:
    moved, still = _sale_with_a_move()
    new_first = [r for r in moved if r[0] == 1] + [r for r in moved if r[0] == 0]

    assert _fold(new_first) == _fold(still)


def test_availability_is_unchanged_when_a_record_is_folded_twice() -> None:
    moved, still = _sale_with_a_move()

    assert _fold(moved + moved) == _fold(still)
