"""The room store while the shared store is down: holds go on from local memory."""

from __future__ import annotations

import asyncio

import pytest

from commands.errors import InfrastructureError
from gateway.rate_limits import Limit
from gateway.room_fallback import FallbackRoomStore
from gateway.room_store import MemoryRoomStore
from gateway.waiting_room import RoomState

LIMIT = Limit(capacity=2, per_second=1.0)


def stores(
    now: list[float], retry_seconds: float = 2.0
) -> tuple[MemoryRoomStore, FallbackRoomStore]:
    shared = MemoryRoomStore()
    return shared, FallbackRoomStore(
        shared, retry_seconds=retry_seconds, clock=lambda: now[0]
    )


async def test_buckets_and_quotas_go_on_locally_when_the_shared_store_is_down() -> None:
    now = [0.0]
    shared, store = stores(now)
    shared.down = True

    first = await store.take_shared("buyer:s:b", LIMIT, 0)
    second = await store.take_shared("buyer:s:b", LIMIT, 0)
    third = await store.take_shared("buyer:s:b", LIMIT, 0)
    quota = [await store.use_quota("t1", f"c{n}", 2) for n in (1, 1, 2, 3)]

    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert quota == [True, True, True, False], "a retried command uses no slot"
    assert store.degraded


async def test_the_shared_store_is_asked_again_after_the_retry_interval() -> None:
    now = [0.0]
    shared, store = stores(now, retry_seconds=2.0)
    shared.down = True
    await store.use_quota("t1", "c1", 5)
    shared.down = False

    now[0] = 1.0
    await store.use_quota("t1", "c2", 5)
    during = dict(shared.quota_slots)
    now[0] = 2.5
    await store.use_quota("t1", "c3", 5)

    assert during == {}, "no call to the shared store within the interval"
    assert shared.quota_slots["t1"] == ["c3"]
    assert not store.degraded


async def test_the_room_read_before_is_served_when_the_shared_store_is_down() -> None:
    now = [0.0]
    shared, store = stores(now)
    await shared.open_room("s1", 1_000, 10.0)
    await shared.count_join("s1", 3)
    seen = await store.load("s1")
    shared.down = True

    during = await store.load("s1")
    assert seen is not None and during is not None
    advanced = RoomState("s1", 1_000, 10.0, mark=5.0, pumped_at_ms=2_000)
    saved = await store.save_mark(during, advanced)
    after = await store.load("s1")

    assert during == seen
    assert saved and after is not None and after.mark == 5.0
    assert after.late_joins == {3: 1}


async def test_opening_a_room_is_refused_when_the_shared_store_is_down() -> None:
    now = [0.0]
    shared, store = stores(now)
    shared.down = True

    with pytest.raises(InfrastructureError):
        await store.open_room("s1", 1_000, 10.0)


async def test_a_shared_store_that_hangs_counts_as_down_after_the_timeout() -> None:
    class Hanging(MemoryRoomStore):
        async def use_quota(self, token_id: str, command_id: str, quota: int) -> bool:
            await asyncio.sleep(10)
            return True

    store = FallbackRoomStore(Hanging(), timeout_seconds=0.05)

    used = await store.use_quota("t1", "c1", 1)

    assert used and store.degraded
    assert store.local.quota_slots["t1"] == ["c1"]
