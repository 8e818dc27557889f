"""Reads while the read model is down: the last answer, stale and saying so."""

from __future__ import annotations

import orjson
import pytest

from commands.errors import InfrastructureError
from gateway.coalescing import CoalescingCache
from gateway.read_views import add_read_routes
from gateway.testing import admission_headers, harness, serve
from tests.fakes.read_side import FakeReadSide
from tests.unit.test_gateway_availability import ROWS

SEATS = "/v1/shows/s1/sections/A/seats"


async def test_the_last_value_is_served_with_its_age_when_the_read_model_is_down() -> (
    None
):
    now = [0.0]
    down = [False]

    async def load(key: str) -> str:
        if down[0]:
            raise InfrastructureError("down")
        return f"{key}@{now[0]}"

    cache: CoalescingCache[str, str] = CoalescingCache(
        load, ttl_seconds=1.0, clock=lambda: now[0]
    )

    fresh = await cache.serve("a")
    down[0] = True
    now[0] = 5.0
    stale = await cache.serve("a")
    now[0] = 5.5
    still = await cache.serve("a")
    down[0] = False
    now[0] = 7.0
    again = await cache.serve("a")

    assert (fresh.value, fresh.stale_seconds) == ("a@0.0", None)
    assert (stale.value, stale.stale_seconds) == ("a@0.0", 5.0)
    assert (still.value, still.stale_seconds) == ("a@0.0", 5.5)
    assert (again.value, again.stale_seconds) == ("a@7.0", None)
    assert cache.loads == 3, "a failed load is remembered for one TTL"


async def test_the_error_reaches_callers_when_nothing_is_cached_or_too_old() -> None:
    now = [0.0]
    down = [False]

    async def load(key: str) -> str:
        if down[0]:
            raise InfrastructureError("down")
        return key

    cache: CoalescingCache[str, str] = CoalescingCache(
        load, ttl_seconds=1.0, clock=lambda: now[0], max_stale_seconds=60.0
    )
    await cache.get("old")
    down[0] = True

    with pytest.raises(InfrastructureError):
        await cache.get("never-read")
    now[0] = 61.0
    with pytest.raises(InfrastructureError):
        await cache.get("old")


async def test_availability_says_it_is_stale_when_the_read_model_goes_down() -> None:
    gateway = harness(cache_ttl_seconds=0.0)
    gateway.availability.rows["s1"] = ROWS
    gateway.availability.lag_seconds = 0.5

    async with serve(gateway.app) as client:
        fresh = await client.get("/v1/shows/s1/availability")
        fresh_body = await fresh.read()
        gateway.availability.down = True
        stale = await client.get("/v1/shows/s1/availability")
        stale_body = await stale.read()
        never = await client.get("/v1/shows/other/availability")
        never_body = orjson.loads(await never.read())

    assert fresh.status == stale.status == 200
    assert "Projection-Stale" not in fresh.headers and "Age" not in fresh.headers
    assert stale.headers["Projection-Stale"] == "true"
    assert int(stale.headers["Age"]) >= 0
    assert float(stale.headers["Projection-Lag-Seconds"]) >= 0.5
    assert stale_body == fresh_body
    assert never.status == 503
    assert never_body["type"] == "/problems/unavailable"
    assert "Retry-After" in never.headers


async def test_seat_maps_turn_stale_and_orders_refused_when_the_read_side_is_down() -> (
    None
):
    side = FakeReadSide()
    gateway = harness()
    add_read_routes(gateway.app, side, ttl_seconds=0.0)

    async with serve(gateway.app) as client:
        fresh = await client.get(SEATS)
        fresh_body = await fresh.read()
        side.down = True
        stale = await client.get(SEATS)
        stale_body = await stale.read()
        orders = await client.get(
            "/v1/buyers/me/orders", headers=admission_headers("s1", "b1")
        )
        orders_body = orjson.loads(await orders.read())

    assert fresh.status == stale.status == 200
    assert "Projection-Stale" not in fresh.headers
    assert stale.headers["Projection-Stale"] == "true"
    assert "Age" in stale.headers
    assert stale_body == fresh_body
    assert orders.status == 503
    assert orders_body["type"] == "/problems/unavailable"
