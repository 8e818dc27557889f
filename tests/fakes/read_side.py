"""A read side of seat maps and orders held in dicts, for gateway tests."""

from __future__ import annotations

import asyncio

from commands.errors import InfrastructureError
from projections.orders import OrderView
from projections.seats import SeatStatus, SeatView
from projections.side_readers import OrdersView, SeatMapView


def seat(seat_id: str, status: SeatStatus, offset: int = 1) -> SeatView:
    return SeatView("s1", "A", seat_id, status, 0, offset, 0, 1_700_000_000_000, "h1")


def order(order_id: str, buyer: str) -> OrderView:
    return OrderView(
        order_id,
        "h1",
        "s1",
        "A",
        buyer,
        ("A-1",),
        1,
        ("t1",),
        1_700_000_000_000,
        0,
        3,
        0,
    )


class FakeReadSide:
    """Seat maps and orders from dicts; counts the seat map reads."""

    def __init__(self) -> None:
        self.seats: list[SeatView] = [
            seat("A-2", SeatStatus.SOLD),
            seat("A-1", SeatStatus.HELD),
            seat("A-3", SeatStatus.WITHDRAWN),
        ]
        self.orders = {"o1": order("o1", "b1"), "o2": order("o2", "b2")}
        self.lag_seconds: float | None = 0.25
        self.seat_reads = 0
        self.gate: asyncio.Event | None = None
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise InfrastructureError("fake read side is down")

    async def seat_map(self, show_id: str, section_id: str) -> SeatMapView:
        self.seat_reads += 1
        self._check()
        if self.gate is not None:
            await self.gate.wait()
        as_of = max((s.updated_at_ms for s in self.seats), default=None)
        return SeatMapView(list(self.seats), as_of, self.lag_seconds)

    async def order(self, order_id: str) -> tuple[OrderView | None, float | None]:
        self._check()
        return self.orders.get(order_id), self.lag_seconds

    async def orders_of(self, buyer_id: str) -> OrdersView:
        self._check()
        mine = [o for o in self.orders.values() if o.buyer_id == buyer_id]
        return OrdersView(mine, self.lag_seconds)
