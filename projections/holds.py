"""The holds read model as a pure fold of events: no I/O, no clock.

Each event of a hold becomes one *change*: the columns that event knows, stamped
with its log position ``(log_offset, log_index)``. The store writes a change with
``USING TIMESTAMP`` from that position, and Cassandra keeps, per column, the value
of the newest write. So a change carries only what its event says (``None`` means
"not said", the column is left alone): ``HoldExpired`` names no buyer, and the
buyer of the earlier ``HoldPlaced`` stays. ``merge_change`` is that rule in
Python, for tests and for callers that keep rows in memory.

The fold holds only changes not yet written, so its memory is bounded by a batch,
however many holds a sale has. Positions order the events of one hold because a
hold lives in one section, and a section's events are all on one Kafka partition.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from commands.model import (
    CheckoutStarted,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    TicketsSold,
)


class HoldStatus(enum.StrEnum):
    """Where a hold is in its life."""

    HELD = "held"
    PAYMENT_PENDING = "payment_pending"
    SOLD = "sold"
    RELEASED = "released"
    EXPIRED = "expired"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class HoldView:
    """A hold as the read model knows it (a row), or one event's change to it.

    In a change, ``None`` means the event does not say; in a stored row it means
    no event said (``seat_ids`` reads back as ``()`` when empty).
    ``expires_at_ms`` is the hold's deadline, or the payment deadline once checkout
    started; ``reason`` says why a hold was rejected or released.
    """

    hold_id: str
    show_id: str
    section_id: str
    status: HoldStatus
    log_partition: int
    log_offset: int
    log_index: int
    updated_at_ms: int
    buyer_id: str | None = None
    seat_ids: tuple[str, ...] | None = None
    quantity: int | None = None
    expires_at_ms: int | None = None
    reason: str | None = None

    @property
    def position(self) -> tuple[int, int]:
        """The log position of the event that made this change."""
        return (self.log_offset, self.log_index)


OPTIONAL_FIELDS = ("buyer_id", "seat_ids", "quantity", "expires_at_ms", "reason")
"""Columns a change may leave alone; every other column is in every change."""


Position = tuple[int, int, int]
"""(partition, offset, index) of an event in the log."""


HoldEvent = (
    HoldPlaced
    | HoldRejected
    | HoldExpired
    | HoldReleased
    | CheckoutStarted
    | TicketsSold
)
"""The events that change a hold's row."""


def hold_change(
    event: Event, partition: int, offset: int, index: int = 0
) -> HoldView | None:
    """What one event says about its hold, or None if it says nothing."""
    at = (partition, offset, index)
    if isinstance(event, HoldPlaced):
        return _change(
            event,
            at,
            event.hold_id,
            HoldStatus.HELD,
            buyer_id=event.buyer_id,
            seat_ids=event.seat_ids,
            quantity=event.quantity,
            expires_at_ms=event.expires_at_ms,
        )
    if isinstance(event, HoldRejected):
        # The core uses the command id as the hold id, also for a refusal.
        return _change(
            event,
            at,
            event.command_id,
            HoldStatus.REJECTED,
            buyer_id=event.buyer_id,
            reason=event.reason.value,
        )
    if isinstance(event, HoldExpired):
        return _change(
            event,
            at,
            event.hold_id,
            HoldStatus.EXPIRED,
            seat_ids=event.seat_ids,
            quantity=event.quantity,
        )
    return _later_change(event, at)


def _later_change(event: Event, at: Position) -> HoldView | None:
    """Changes of checkout, sale and release; None for any other event."""
    if isinstance(event, CheckoutStarted):
        return _change(
            event,
            at,
            event.hold_id,
            HoldStatus.PAYMENT_PENDING,
            buyer_id=event.buyer_id,
            expires_at_ms=event.payment_deadline_ms,
        )
    if isinstance(event, TicketsSold):
        return _change(
            event,
            at,
            event.hold_id,
            HoldStatus.SOLD,
            buyer_id=event.buyer_id,
            seat_ids=event.seat_ids,
            quantity=event.quantity,
        )
    if isinstance(event, HoldReleased):
        return _change(
            event,
            at,
            event.hold_id,
            HoldStatus.RELEASED,
            seat_ids=event.seat_ids,
            quantity=event.quantity,
            reason=event.reason.value,
        )
    return None


def _change(
    event: HoldEvent,
    at: Position,
    hold_id: str,
    status: HoldStatus,
    *,
    buyer_id: str | None = None,
    seat_ids: tuple[str, ...] | None = None,
    quantity: int | None = None,
    expires_at_ms: int | None = None,
    reason: str | None = None,
) -> HoldView:
    """A change with the columns every event of a hold writes, and some more."""
    partition, offset, index = at
    return HoldView(
        hold_id=hold_id,
        show_id=event.show_id,
        section_id=event.section_id,
        status=status,
        log_partition=partition,
        log_offset=offset,
        log_index=index,
        updated_at_ms=event.occurred_at_ms,
        buyer_id=buyer_id,
        seat_ids=seat_ids,
        quantity=quantity,
        expires_at_ms=expires_at_ms,
        reason=reason,
    )


def merge_change(row: HoldView | None, change: HoldView) -> HoldView:
    """The row after a change, as Cassandra merges it (newest write per column).

    Both carry one position for all their columns, so this is exact when ``row``
    is made of changes that are all older, or all newer, than ``change``: the
    case of a fold in log order, and of a write arriving after newer ones.
    """
    if row is None:
        return change
    newer, older = (change, row) if change.position > row.position else (row, change)
    filled = {
        name: getattr(older, name)
        for name in OPTIONAL_FIELDS
        if getattr(newer, name) is None and getattr(older, name) is not None
    }
    return dataclasses.replace(newer, **filled) if filled else newer


class HoldFold:
    """The unwritten changes of each hold, merged, kept until the store has them.

    Changes of one hold in one batch are merged with ``merge_change`` into one
    write at the newest position. That is what Cassandra would keep of the
    separate writes: a batch is a contiguous stretch of its partition's log, so
    every column the merged write carries was last set inside that stretch.
    """

    def __init__(self) -> None:
        self._pending: dict[str, HoldView] = {}

    def apply(self, event: Event, partition: int, offset: int, index: int = 0) -> bool:
        """Note the change an event makes; False if it makes none."""
        change = hold_change(event, partition, offset, index)
        if change is None:
            return False
        self._pending[change.hold_id] = merge_change(
            self._pending.get(change.hold_id), change
        )
        return True

    def changes(self) -> list[HoldView]:
        """One merged change per hold not yet written."""
        return list(self._pending.values())

    def clear(self) -> None:
        """Forget every change (after the store acknowledged them)."""
        self._pending.clear()

    def forget_partitions(self, partitions: set[int] | frozenset[int]) -> None:
        """Drop unwritten changes of partitions this process no longer owns."""
        pending = self._pending
        for key in [k for k, c in pending.items() if c.log_partition in partitions]:
            del pending[key]
