"""The seat map read model as a pure fold of events: no I/O, no clock.

Each event that names seats becomes one *change* per seat: its full row (status,
hold, order) stamped with the event's log position. The store writes a change
with ``USING TIMESTAMP`` from that position, so of two writes of one seat the
later position wins whatever order they arrive in, and writing a change twice is
the same as once. Positions order a seat's events because a seat lives in one
section and a section's events are all on one Kafka partition.

The fold keeps, per seat, only the newest change not yet written, so a batch in
which a seat is held, then sold, costs one write; memory is bounded by a batch.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from commands.model import (
    Event,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    InventoryAdded,
    InventoryWithdrawn,
    TicketsSold,
)

# TODO(limit): SectionCreated does not name its seats (the plan is in CreateShow),
# so a seat the log never named has no row and the seat map lists only seats
# ever held, sold, added or withdrawn; the rest are free. It matters once a client
# draws the whole map from this answer; then SectionCreated needs the seat ids.

SeatKey = tuple[str, str, str]
"""A seat's identity: (show_id, section_id, seat_id)."""


class SeatStatus(enum.StrEnum):
    """What a seat is now."""

    FREE = "free"
    HELD = "held"
    SOLD = "sold"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class SeatView:
    """One seat as the read model knows it (a row, or one event's change to it).

    ``hold_id`` is the hold that has the seat (held or sold), ``order_id`` the
    order that bought it (sold); both None otherwise.
    """

    show_id: str
    section_id: str
    seat_id: str
    status: SeatStatus
    log_partition: int
    log_offset: int
    log_index: int
    updated_at_ms: int
    hold_id: str | None = None
    order_id: str | None = None

    @property
    def key(self) -> SeatKey:
        """The seat's identity."""
        return (self.show_id, self.section_id, self.seat_id)

    @property
    def position(self) -> tuple[int, int]:
        """The log position of the event that made this change."""
        return (self.log_offset, self.log_index)


def seat_changes(
    event: Event, partition: int, offset: int, index: int = 0
) -> list[SeatView]:
    """One change per seat the event names; empty for any other event."""
    status: SeatStatus
    hold_id: str | None = None
    order_id: str | None = None
    if isinstance(event, HoldPlaced):
        status, hold_id = SeatStatus.HELD, event.hold_id
    elif isinstance(event, HoldExpired | HoldReleased | InventoryAdded):
        status = SeatStatus.FREE
    elif isinstance(event, TicketsSold):
        status, hold_id, order_id = SeatStatus.SOLD, event.hold_id, event.order_id
    elif isinstance(event, InventoryWithdrawn):
        status = SeatStatus.WITHDRAWN
    else:
        return []
    return [
        SeatView(
            show_id=event.show_id,
            section_id=event.section_id,
            seat_id=seat,
            status=status,
            log_partition=partition,
            log_offset=offset,
            log_index=index,
            updated_at_ms=event.occurred_at_ms,
            hold_id=hold_id,
            order_id=order_id,
        )
        for seat in event.seat_ids
    ]


def newest(row: SeatView | None, change: SeatView) -> SeatView:
    """The row after a change, as Cassandra keeps it (the newest position wins)."""
    if row is None or change.position > row.position:
        return change
    return row


class SeatFold:
    """The newest unwritten change of each seat, kept until the store has them."""

    def __init__(self) -> None:
        self._pending: dict[SeatKey, SeatView] = {}

    def apply(self, event: Event, partition: int, offset: int, index: int = 0) -> int:
        """Note the changes an event makes; how many seats it names."""
        changes = seat_changes(event, partition, offset, index)
        for change in changes:
            self._pending[change.key] = newest(self._pending.get(change.key), change)
        return len(changes)

    def changes(self) -> list[SeatView]:
        """The newest unwritten change of each seat."""
        return list(self._pending.values())

    def clear(self) -> None:
        """Forget every change (after the store acknowledged them)."""
        self._pending.clear()

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Drop unwritten changes of partitions this process no longer owns."""
        gone = set(partitions)
        for key in [k for k, c in self._pending.items() if c.log_partition in gone]:
            del self._pending[key]
