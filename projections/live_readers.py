"""Every reader of the read models, in the live keyspace, following switch-overs.

The gateway holds one ``LiveReadModels``. It starts in the keyspace the pointer
row names (``projections.active``) and looks at that row again at most every
``POINTER_CHECK_SECONDS`` (one read, shared by concurrent callers); when it moved,
it prepares readers for the new keyspace and uses them from then on. A failed
pointer read keeps the readers it has: the queries then say whether Cassandra
is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cassandra.cluster import Session

from commands.errors import InfrastructureError
from projections.active import POINTER_CHECK_SECONDS, active_keyspace
from projections.cql import fetch_all
from projections.hold_reader import HoldReader
from projections.holds import HoldView
from projections.orders import OrderView
from projections.reader import PROJECTION, AvailabilityReader, ShowView
from projections.schema import checked_keyspace, ensure_pointer_table
from projections.side_readers import OrdersView, SeatMapView, SideReader

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Readers:
    keyspace: str
    availability: AvailabilityReader
    holds: HoldReader
    side: SideReader


def _readers(session: Session, keyspace: str) -> _Readers:
    """Prepare every reader's statements for one keyspace (blocking)."""
    return _Readers(
        keyspace,
        AvailabilityReader(session, keyspace),
        HoldReader(session, keyspace),
        SideReader(session, keyspace),
    )


class LiveReadModels:
    """Availability, holds, seat maps and orders from the live keyspace."""

    def __init__(
        self,
        session: Session,
        home_keyspace: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        home = checked_keyspace(home_keyspace)
        ensure_pointer_table(session, home)
        self._session = session
        self._clock = clock
        self._current = _readers(session, active_keyspace(session, home))
        self._checked_at = clock()
        self._checking: asyncio.Future[None] | None = None
        self._pointer = session.prepare(
            f"SELECT keyspace_name FROM {home}.active_read_models WHERE projection = ?"
        )
        self._home = home

    @property
    def keyspace(self) -> str:
        """The keyspace read now."""
        return self._current.keyspace

    async def view(self, show_id: str) -> ShowView:
        """A show's availability with its freshness (``AvailabilityReader.view``)."""
        return await (await self._live()).availability.view(show_id)

    async def by_id(self, hold_id: str) -> HoldView | None:
        """A hold by id (``HoldReader.by_id``)."""
        return await (await self._live()).holds.by_id(hold_id)

    async def seat_map(self, show_id: str, section_id: str) -> SeatMapView:
        """A section's seat map with its freshness."""
        return await (await self._live()).side.seat_map(show_id, section_id)

    async def order(self, order_id: str) -> tuple[OrderView | None, float | None]:
        """An order by id and its lag."""
        return await (await self._live()).side.order(order_id)

    async def orders_of(self, buyer_id: str) -> OrdersView:
        """A buyer's orders and their lag."""
        return await (await self._live()).side.orders_of(buyer_id)

    async def _live(self) -> _Readers:
        """The readers of the live keyspace, checking the pointer when due."""
        if self._clock() - self._checked_at >= POINTER_CHECK_SECONDS:
            if self._checking is None:
                self._checking = asyncio.ensure_future(self._check())
            checking = self._checking
            await asyncio.shield(checking)
        return self._current

    async def _check(self) -> None:
        """Read the pointer; move to its keyspace if it changed."""
        try:
            found = await fetch_all(
                self._session, self._pointer, (PROJECTION,), "read the live keyspace"
            )
            live = checked_keyspace(found[0].keyspace_name) if found else self._home
            if live != self._current.keyspace:
                loop = asyncio.get_running_loop()
                self._current = await loop.run_in_executor(
                    None, _readers, self._session, live
                )
                logger.info("live keyspace switched", extra={"keyspace": live})
        except InfrastructureError:
            pass  # keep the readers we have; their queries report the outage
        finally:
            self._checked_at = self._clock()
            self._checking = None
