"""The availability read model as a pure fold of events: no I/O, no clock.

Every row remembers the log position of the last event folded into it:
``(log_offset, log_index)``, the offset of the Kafka record and the event's place in
that record's batch. An event at or before that position is skipped, so a
redelivered record or a replay from an older offset changes nothing, and an older
event never overwrites a newer one. Every event of a section is keyed
``show/section`` and lands on the one partition the section lives on; a section
that moved partition decides under a higher route epoch (the ``route-epoch``
header of its event records), and a position is ``(epoch, offset)`` packed in
one number (``log_position``), so positions of a section compare across its
partitions. ``SectionAdopted`` carries the section's counts at its move, so
events of the old partition folded late change nothing.
An event of a type the fold does not count (``SaleOpened``, a refusal, a type added
after this code) only moves the row's position and log time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from commands.model import (
    Event,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    HoldTtlChanged,
    InventoryAdded,
    InventoryWithdrawn,
    SectionAdopted,
    SectionCreated,
    SectionKind,
    TicketsSold,
)
from schemas.codec import ROUTE_EPOCH_HEADER, Headers

SectionKey = tuple[str, str]
"""A row's identity: (show_id, section_id)."""

EPOCH_SHIFT = 32
"""Bits of a log position below the route epoch: offsets of one partition."""


def route_epoch(headers: Headers) -> int:
    """The route epoch an event record names (0 when it names none)."""
    if headers is None:
        return 0
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        if key == ROUTE_EPOCH_HEADER and value:
            return int(value)
    return 0


def log_position(offset: int, epoch: int) -> int:
    """One number ordering a section's events across its moves: epoch, offset."""
    # TODO(limit): offsets at or above 2**32 in one partition of the event topic
    # would reach into the epoch bits; at that size, widen the write timestamps.
    return (epoch << EPOCH_SHIFT) | offset


@dataclass(slots=True)
class SectionAvailability:
    """How many places of one section are held, sold and free, and as of when."""

    show_id: str
    section_id: str
    kind: SectionKind
    capacity: int
    held: int
    sold: int
    free: int
    hold_ttl_seconds: int
    log_partition: int
    log_offset: int
    log_index: int = 0
    updated_at_ms: int = 0

    @property
    def key(self) -> SectionKey:
        """The row's identity."""
        return (self.show_id, self.section_id)

    def is_at_or_after(self, offset: int, index: int) -> bool:
        """Whether the event at (offset, index) is already folded into this row."""
        return (offset, index) <= (self.log_offset, self.log_index)


class AvailabilityFold:
    """Per-section availability rows built from events in log order."""

    def __init__(self, rows: Iterable[SectionAvailability] = ()) -> None:
        self._rows: dict[SectionKey, SectionAvailability] = {}
        self._dirty: set[SectionKey] = set()
        self.orphan_events = 0
        """Holds for a section this fold never saw created (a gap in the log)."""
        self.restore(rows)

    def restore(self, rows: Iterable[SectionAvailability]) -> None:
        """Adopt stored rows as they are (on start or partition assignment)."""
        for row in rows:
            self._rows[row.key] = row
            self._dirty.discard(row.key)

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Drop the rows of partitions this process no longer owns."""
        gone = set(partitions)
        for key in [k for k, r in self._rows.items() if r.log_partition in gone]:
            del self._rows[key]
            self._dirty.discard(key)

    def row(self, show_id: str, section_id: str) -> SectionAvailability | None:
        """The current row of a section, if it exists."""
        return self._rows.get((show_id, section_id))

    def rows(self) -> list[SectionAvailability]:
        """Every current row."""
        return list(self._rows.values())

    def changed_rows(self) -> list[SectionAvailability]:
        """Rows changed since the last ``clear_changed``, each once."""
        return [self._rows[key] for key in self._dirty]

    def clear_changed(self) -> None:
        """Mark every row as written (after the store acknowledged them)."""
        self._dirty.clear()

    def dirty_rows(self) -> list[SectionAvailability]:
        """Rows changed since the last call, each once."""
        dirty = self.changed_rows()
        self.clear_changed()
        return dirty

    def apply(self, event: Event, partition: int, offset: int, index: int = 0) -> bool:
        """Fold one event at its log position; False if it was already folded.

        ``index`` is the event's place in the batch of its Kafka record.
        """
        if not isinstance(event, _ROW_EVENTS):
            # Refusals change no count, and requests, key reuses and limits come
            # from the buyers' ledger, on another partition: their offsets are
            # not comparable with the section's, so they must not move a row.
            return False
        key = (event.show_id, event.section_id)
        row = self._rows.get((key[0], key[1]))
        if row is not None and row.is_at_or_after(offset, index):
            return False

        if isinstance(event, SectionCreated):
            row = self._created(row, event, partition)
        elif isinstance(event, SectionAdopted):
            row = self._adopted(row, event, partition)
        elif row is None:
            # Rejections of unknown sections are expected and change nothing here.
            if isinstance(event, _HOLD_EVENTS):
                self.orphan_events += 1
            return True
        else:
            _count(row, event)

        row.free = row.capacity - row.held - row.sold
        row.log_partition = partition
        row.log_offset = offset
        row.log_index = index
        row.updated_at_ms = event.occurred_at_ms
        self._dirty.add(row.key)
        return True

    def _created(
        self, row: SectionAvailability | None, event: SectionCreated, partition: int
    ) -> SectionAvailability:
        """The row of a created section, keeping counts if it already existed."""
        if row is None:
            row = SectionAvailability(
                show_id=event.show_id,
                section_id=event.section_id,
                kind=event.kind,
                capacity=event.capacity,
                held=0,
                sold=0,
                free=event.capacity,
                hold_ttl_seconds=event.hold_ttl_seconds,
                log_partition=partition,
                log_offset=-1,
            )
            self._rows[row.key] = row
            return row
        row.kind = event.kind
        row.capacity = event.capacity
        row.hold_ttl_seconds = event.hold_ttl_seconds
        return row

    def _adopted(
        self, row: SectionAvailability | None, event: SectionAdopted, partition: int
    ) -> SectionAvailability:
        """The row of a section that moved: its counts at the move, as they were."""
        created = SectionCreated(
            event.command_id,
            event.occurred_at_ms,
            event.show_id,
            event.section_id,
            event.kind,
            event.capacity,
            event.hold_ttl_seconds,
        )
        row = self._created(row, created, partition)
        row.held = event.held
        row.sold = event.sold
        return row


_HOLD_EVENTS = (HoldPlaced, HoldExpired, HoldReleased, TicketsSold)
_ROW_EVENTS = (
    SectionCreated,
    SectionAdopted,
    *_HOLD_EVENTS,
    InventoryAdded,
    InventoryWithdrawn,
    HoldTtlChanged,
)
"""Events decided by a section that change its row; all come from its partition."""


def _count(row: SectionAvailability, event: Event) -> None:
    """Move a row's counts by one event; other events leave them alone."""
    if isinstance(event, HoldPlaced):
        row.held += event.quantity
    elif isinstance(event, HoldExpired | HoldReleased):
        row.held -= event.quantity
    elif isinstance(event, TicketsSold):
        row.held -= event.quantity
        row.sold += event.quantity
    elif isinstance(event, InventoryAdded | InventoryWithdrawn):
        row.capacity = event.capacity
    elif isinstance(event, HoldTtlChanged):
        row.hold_ttl_seconds = event.hold_ttl_seconds
