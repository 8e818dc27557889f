"""A projection store in memory that merges writes the way Cassandra does.

Every write carries the timestamp the real store would send (``USING TIMESTAMP``
from the log position); each cell keeps the value of the write with the highest
timestamp, and a column a write leaves unset keeps its older value. Rows and
cells therefore come out as in the real tables, whatever order writes arrive in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from projections.availability import SectionAvailability
from projections.holds import HoldView
from projections.orders import OrderView
from projections.seats import SeatView
from projections.store import PartitionProgress, write_timestamp

Cells = dict[str, tuple[int, Any]]


class CassandraLikeStore:
    """Behind ``ProjectionStore``; tables are dicts of key -> cells."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Hashable, Cells]] = {
            "availability": {},
            "holds": {},
            "seats": {},
            "orders": {},
            "buyer_orders": {},
        }
        self.progress: dict[int, PartitionProgress] = {}
        self.writes = 0

    def load_rows(self, partitions: Iterable[int]) -> list[SectionAvailability]:
        wanted = set(partitions)
        rows = [SectionAvailability(**row) for row in self.rows("availability")]
        return [row for row in rows if row.log_partition in wanted]

    def load_progress(self) -> dict[int, PartitionProgress]:
        return dict(self.progress)

    def save_rows(self, rows: Iterable[SectionAvailability]) -> None:
        for row in rows:
            self._write("availability", row.key, row, row.log_offset, row.log_index)

    def save_holds(self, changes: Iterable[HoldView]) -> None:
        for c in changes:
            self._write("holds", c.hold_id, c, c.log_offset, c.log_index)

    def save_seats(self, changes: Iterable[SeatView]) -> None:
        for c in changes:
            self._write("seats", c.key, c, c.log_offset, c.log_index, nulls=True)

    def save_orders(self, orders: Iterable[OrderView]) -> None:
        for o in orders:
            self._write("orders", o.order_id, o, o.log_offset, o.log_index)
            key = (o.buyer_id, o.order_id)
            self._write("buyer_orders", key, o, o.log_offset, o.log_index)

    def save_all(
        self,
        rows: Iterable[SectionAvailability],
        holds: Iterable[HoldView],
        seats: Iterable[SeatView],
        orders: Iterable[OrderView],
    ) -> None:
        self.save_rows(rows)
        self.save_holds(holds)
        self.save_seats(seats)
        self.save_orders(orders)

    def save_progress(self, progress: Mapping[int, PartitionProgress]) -> None:
        self.progress.update(progress)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a table as column -> value, ordered by key."""
        found = self.tables[table]
        return [
            {name: cell[1] for name, cell in found[key].items()}
            for key in sorted(found, key=repr)
        ]

    def _write(
        self,
        table: str,
        key: Hashable,
        row: Any,
        offset: int,
        index: int,
        nulls: bool = False,
    ) -> None:
        """Merge one row write; None is "unset" unless ``nulls`` (a full row)."""
        self.writes += 1
        stamp = write_timestamp(offset, index)
        cells = self.tables[table].setdefault(key, {})
        for field in dataclasses.fields(row):
            value = getattr(row, field.name)
            if value is None and not nulls:
                continue
            old = cells.get(field.name)
            if old is None or stamp > old[0]:
                cells[field.name] = (stamp, value)
