"""The room store that keeps holds going while the shared (Cassandra) store is down.

Holds and checkouts take a token from the buyer's shared bucket and a slot of
the admission token's hold quota (``gateway.room_store``). Both live in Cassandra
so that every gateway instance sees them. When that store fails
(``InfrastructureError``, or no answer within ``timeout_seconds``), this wrapper
answers from this process's memory instead and keeps doing so for
``retry_seconds`` before it tries the shared store again, so an outage costs one
slow call per interval, not one per request. The waiting room goes on from the
last room state this instance read (the mark advances locally); opening a room
is an administrator's act and is refused (503) while the store is down.

While degraded, ``ticketing_gateway_room_store_degraded`` is 1 and one WARNING is
logged; one INFO when the shared store answers again.

TODO(limit): while degraded, limits hold per instance only: with N gateway
instances a buyer may get N times the per-buyer rate, an admission token up to
N + 1 times its hold quota (the slots claimed locally are not written back), and
each instance advances its own copy of the queue mark, so the room admits up to N
times its outflow for the length of the outage. It matters when an outage of the
shared store outlasts a few seconds on a sale served by several instances; then
write the local claims back on recovery and split the outflow by instance count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from commands.errors import InfrastructureError
from gateway.metrics import ROOM_STORE_DEGRADED
from gateway.rate_limits import Limit, Verdict
from gateway.room_store import MemoryRoomStore, RoomStore
from gateway.waiting_room import EARLY_SLOT, RoomState

logger = logging.getLogger(__name__)

T = TypeVar("T")

TIMEOUT_SECONDS: Final = 3.0
RETRY_SECONDS: Final = 2.0


class FallbackRoomStore:
    """A ``RoomStore`` on a shared store, falling back to local memory."""

    def __init__(
        self,
        shared: RoomStore,
        timeout_seconds: float = TIMEOUT_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared = shared
        self.local = MemoryRoomStore()
        self._timeout_seconds = timeout_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until = 0.0
        self.degraded = False
        """Whether the last call was answered from local memory."""

    async def _either(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        """The shared store's answer, or the local one while it is down."""
        if self._clock() < self._down_until:
            return await local()
        try:
            answer = await asyncio.wait_for(shared(), self._timeout_seconds)
        except (InfrastructureError, TimeoutError) as exc:
            self._mark_down(exc)
            return await local()
        self._mark_up()
        return answer

    def _mark_down(self, exc: BaseException) -> None:
        self._down_until = self._clock() + self._retry_seconds
        if not self.degraded:
            logger.warning(
                "room store unavailable; buckets, quotas and rooms go on locally",
                extra={"error": type(exc).__name__},
            )
        self.degraded = True
        ROOM_STORE_DEGRADED.set(1)

    def _mark_up(self) -> None:
        if self.degraded:
            logger.info("room store available again")
        self.degraded = False
        ROOM_STORE_DEGRADED.set(0)

    def _remember(self, room: RoomState | None) -> RoomState | None:
        """Keep the last room state read, for local service during an outage."""
        if room is not None:
            self.local.rooms[room.show_id] = room
            self.local.joins[room.show_id] = {
                EARLY_SLOT: room.early_joins,
                **room.late_joins,
            }
        return room

    async def open_room(
        self, show_id: str, opens_at_ms: int, admit_per_second: float
    ) -> RoomState:
        """Only on the shared store: a room opened locally would vanish later."""
        room = await self.shared.open_room(show_id, opens_at_ms, admit_per_second)
        self._remember(room)
        return room

    async def load(self, show_id: str) -> RoomState | None:
        async def shared() -> RoomState | None:
            return self._remember(await self.shared.load(show_id))

        return await self._either(shared, lambda: self.local.load(show_id))

    async def count_join(self, show_id: str, slot: int) -> None:
        await self._either(
            lambda: self.shared.count_join(show_id, slot),
            lambda: self.local.count_join(show_id, slot),
        )

    async def save_mark(self, seen: RoomState, advanced: RoomState) -> bool:
        return await self._either(
            lambda: self.shared.save_mark(seen, advanced),
            lambda: self.local.save_mark(seen, advanced),
        )

    async def take_shared(self, bucket: str, limit: Limit, now_us: int) -> Verdict:
        return await self._either(
            lambda: self.shared.take_shared(bucket, limit, now_us),
            lambda: self.local.take_shared(bucket, limit, now_us),
        )

    async def use_quota(self, token_id: str, command_id: str, quota: int) -> bool:
        return await self._either(
            lambda: self.shared.use_quota(token_id, command_id, quota),
            lambda: self.local.use_quota(token_id, command_id, quota),
        )
