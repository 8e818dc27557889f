"""Reading the seat map and the orders from Cassandra, for asyncio callers.

Each answer is one partition read plus the worker's progress rows, and says how
far behind the log it may be, like ``AvailabilityReader.view``:

- the seat map's lag is that of the Kafka partition its section lives on;
- an order list's lag is that of every partition (a buyer's orders come from
  all of them), so it is the oldest ``caught_up_at`` of the projection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cassandra.cluster import Session

from projections.cql import epoch_ms, fetch_all
from projections.orders import OrderView
from projections.reader import PROJECTION, ProgressReader, partition_lag
from projections.schema import checked_keyspace
from projections.seats import SeatStatus, SeatView
from projections.store import ORDER_COLUMNS, SEAT_COLUMNS


@dataclass(frozen=True, slots=True)
class SeatMapView:
    """A section's known seats (ordered by id) and how stale they may be."""

    seats: list[SeatView]
    as_of_ms: int | None
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class OrdersView:
    """Orders (ordered by id) and how stale they may be."""

    orders: list[OrderView]
    lag_seconds: float | None


def seat_from_cql(row: Any) -> SeatView:
    """Map a row of ``seats_by_section`` to the read model."""
    return SeatView(
        show_id=row.show_id,
        section_id=row.section_id,
        seat_id=row.seat_id,
        status=SeatStatus(row.status),
        log_partition=row.log_partition,
        log_offset=row.log_offset,
        log_index=row.log_index or 0,
        updated_at_ms=epoch_ms(row.updated_at) or 0,
        hold_id=row.hold_id,
        order_id=row.order_id,
    )


def order_from_cql(row: Any) -> OrderView:
    """Map a row of ``orders_by_id`` or ``orders_by_buyer`` to the read model."""
    return OrderView(
        order_id=row.order_id,
        hold_id=row.hold_id,
        show_id=row.show_id,
        section_id=row.section_id,
        buyer_id=row.buyer_id,
        seat_ids=tuple(row.seat_ids or ()),
        quantity=row.quantity,
        ticket_ids=tuple(row.ticket_ids or ()),
        sold_at_ms=epoch_ms(row.sold_at) or 0,
        log_partition=row.log_partition,
        log_offset=row.log_offset,
        log_index=row.log_index or 0,
    )


class SideReader:
    """Seat map and orders of one keyspace, without blocking the loop."""

    def __init__(
        self,
        session: Session,
        keyspace: str,
        clock: Callable[[], float] = time.time,
        projection: str = PROJECTION,
    ) -> None:
        ks = checked_keyspace(keyspace)
        self._session = session
        self._clock = clock
        self._progress = ProgressReader(session, ks, projection)
        self._seats = session.prepare(
            f"SELECT {SEAT_COLUMNS} FROM {ks}.seats_by_section "
            "WHERE show_id = ? AND section_id = ?"
        )
        self._order = session.prepare(
            f"SELECT {ORDER_COLUMNS} FROM {ks}.orders_by_id WHERE order_id = ?"
        )
        self._buyer_orders = session.prepare(
            f"SELECT {ORDER_COLUMNS} FROM {ks}.orders_by_buyer WHERE buyer_id = ?"
        )

    async def seat_map(self, show_id: str, section_id: str) -> SeatMapView:
        """The section's seats the log has named, with freshness."""
        found, caught = await asyncio.gather(
            fetch_all(self._session, self._seats, (show_id, section_id), "read seats"),
            self.caught_up_ms(),
        )
        seats = [seat_from_cql(row) for row in found]
        as_of = max((seat.updated_at_ms for seat in seats), default=None)
        partitions = {seat.log_partition for seat in seats}
        return SeatMapView(seats, as_of, partition_lag(partitions, caught, self._now()))

    async def order(self, order_id: str) -> tuple[OrderView | None, float | None]:
        """One order by id, if projected, and the lag of its partition."""
        found, caught = await asyncio.gather(
            fetch_all(self._session, self._order, (order_id,), "read an order"),
            self.caught_up_ms(),
        )
        if not found:
            return None, partition_lag(set(caught), caught, self._now())
        order = order_from_cql(found[0])
        lag = partition_lag({order.log_partition}, caught, self._now())
        return order, lag

    async def orders_of(self, buyer_id: str) -> OrdersView:
        """Every order of a buyer, and the lag of the whole projection."""
        found, caught = await asyncio.gather(
            fetch_all(
                self._session, self._buyer_orders, (buyer_id,), "read buyer orders"
            ),
            self.caught_up_ms(),
        )
        orders = [order_from_cql(row) for row in found]
        return OrdersView(orders, partition_lag(set(caught), caught, self._now()))

    async def caught_up_ms(self) -> dict[int, int]:
        """Per Kafka partition, when the worker last had folded all of it (ms)."""
        return await self._progress.caught_up_ms()

    def _now(self) -> int:
        return int(self._clock() * 1000)
