"""Folding log records into both read models and writing them, without Kafka.

One ``Projector`` holds the folds of every read model (availability, holds,
seats, orders) and the progress of every partition it owns. ``fold`` takes
decoded-or-not records; ``save`` writes, in this order, the changed availability
rows, the hold, seat and order changes, then each partition's progress (next
offset and caught-up time). The changes stay pending until every
write of a ``save`` was acknowledged, so a failed ``save`` can simply be repeated,
and progress never gets ahead of the rows it covers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from commands.errors import CodecError
from projections.availability import (
    AvailabilityFold,
    SectionAvailability,
    log_position,
    route_epoch,
)
from projections.holds import HoldFold, HoldView
from projections.orders import OrderFold, OrderView
from projections.seats import SeatFold, SeatView
from projections.store import PartitionProgress
from schemas.codec import Headers, decode_events

logger = logging.getLogger(__name__)


class ProjectionStore(Protocol):
    """Where the worker keeps rows and progress (``AvailabilityStore``, or a fake).

    Every method raises ``InfrastructureError`` when the store fails.
    """

    def load_rows(self, partitions: Iterable[int]) -> list[SectionAvailability]: ...

    def load_progress(self) -> dict[int, PartitionProgress]: ...

    def save_rows(self, rows: Iterable[SectionAvailability]) -> None: ...

    def save_holds(self, changes: Iterable[HoldView]) -> None: ...

    def save_seats(self, changes: Iterable[SeatView]) -> None: ...

    def save_orders(self, orders: Iterable[OrderView]) -> None: ...

    def save_all(
        self,
        rows: Iterable[SectionAvailability],
        holds: Iterable[HoldView],
        seats: Iterable[SeatView],
        orders: Iterable[OrderView],
    ) -> None:
        """Write the changes of every table; the store may do it in one round."""
        ...

    def save_progress(self, progress: Mapping[int, PartitionProgress]) -> None: ...


class LogRecord(Protocol):
    """What the projector reads of a Kafka message (``confluent_kafka.Message``)."""

    def value(self) -> Any: ...

    def headers(self) -> Any: ...

    def topic(self) -> Any: ...


@dataclass(slots=True)
class WorkerCounts:
    """What one run of the worker did; logged when it stops."""

    records: int = 0
    events_applied: int = 0
    events_skipped: int = 0
    undecodable_records: int = 0
    rows_written: int = 0
    hold_changes_written: int = 0
    seat_changes_written: int = 0
    orders_written: int = 0
    saves_failed: int = 0
    """Attempts to write rows and progress that the store refused (then retried)."""
    busy_seconds: float = 0.0
    """Time spent decoding, folding and writing, without waiting for records."""


class Projector:
    """Both folds of the owned partitions, and what of them is not yet stored."""

    def __init__(self, store: ProjectionStore, counts: WorkerCounts) -> None:
        self.store = store
        self.counts = counts
        self._availability = AvailabilityFold()
        self._holds = HoldFold()
        self._seats = SeatFold()
        self._orders = OrderFold()
        self._progress: dict[int, PartitionProgress] = {}
        self._unsaved: set[int] = set()

    @property
    def has_unsaved(self) -> bool:
        """Whether some fold or progress change awaits ``save``."""
        return bool(
            self._unsaved
            or self._holds.changes()
            or self._seats.changes()
            or self._orders.changes()
        )

    def progress(self, partition: int) -> PartitionProgress | None:
        """The partition's progress as folded (saved or not)."""
        return self._progress.get(partition)

    def restore(self, partitions: Sequence[int]) -> dict[int, int]:
        """Load stored rows and progress of partitions; their next offsets."""
        self._availability.restore(self.store.load_rows(partitions))
        saved = self.store.load_progress()
        for partition in partitions:
            if partition in saved:
                self._progress[partition] = saved[partition]
        return {p: saved[p].next_offset for p in partitions if p in saved}

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop everything of partitions another worker now owns, saved or not."""
        gone = frozenset(partitions)
        self._availability.forget_partitions(gone)
        self._holds.forget_partitions(gone)
        self._seats.forget_partitions(gone)
        self._orders.forget_partitions(gone)
        for partition in gone:
            self._progress.pop(partition, None)
            self._unsaved.discard(partition)

    def fold(self, partition: int, offset: int, record: LogRecord) -> None:
        """Decode one record and fold its events; skip it if it does not decode."""
        self.counts.records += 1
        self._advance(partition, offset + 1, None)
        try:
            headers = cast(Headers, record.headers())  # our producers send bytes
            events = decode_events(record.value(), headers)
        except CodecError as exc:
            self.counts.undecodable_records += 1
            logger.warning(
                "undecodable record skipped",
                extra={
                    "topic": record.topic(),
                    "partition": partition,
                    "offset": offset,
                    "reason": exc.reason,
                },
            )
            return
        # A section that moved partition decides under a higher route epoch, so
        # its later events sort after all it decided before, wherever they are.
        position = log_position(offset, route_epoch(headers))
        for index, event in enumerate(events):
            if self._availability.apply(event, partition, position, index):
                self.counts.events_applied += 1
            else:
                self.counts.events_skipped += 1
            self._holds.apply(event, partition, position, index)
            self._seats.apply(event, partition, position, index)
            self._orders.apply(event, partition, position, index)

    def caught_up(self, partition: int, next_offset: int, at_ms: int) -> None:
        """Note that every record before ``next_offset`` was folded at ``at_ms``."""
        self._advance(partition, next_offset, at_ms)

    def save(self) -> dict[int, int]:
        """Write rows, hold changes, then progress; the next offsets it saved.

        Raises ``InfrastructureError`` if the store fails; nothing is marked saved
        then, and calling ``save`` again writes the same and more.
        """
        rows = self._availability.changed_rows()
        holds = self._holds.changes()
        seats = self._seats.changes()
        orders = self._orders.changes()
        progress = {p: self._progress[p] for p in self._unsaved}
        try:
            self.store.save_all(rows, holds, seats, orders)
            self.store.save_progress(progress)
        except Exception:
            self.counts.saves_failed += 1
            raise

        self._availability.clear_changed()
        self._holds.clear()
        self._seats.clear()
        self._orders.clear()
        self._unsaved.clear()
        self.counts.rows_written += len(rows)
        self.counts.hold_changes_written += len(holds)
        self.counts.seat_changes_written += len(seats)
        self.counts.orders_written += len(orders)
        return {p: done.next_offset for p, done in progress.items()}

    def _advance(self, partition: int, next_offset: int, at_ms: int | None) -> None:
        """Move a partition's progress forward, never back."""
        old = self._progress.get(partition)
        if old is not None:
            next_offset = max(next_offset, old.next_offset)
            if at_ms is None or (old.caught_up_at_ms or 0) > at_ms:
                at_ms = old.caught_up_at_ms
        new = PartitionProgress(next_offset, at_ms)
        if new != old:
            self._progress[partition] = new
            self._unsaved.add(partition)
