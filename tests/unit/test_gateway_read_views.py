"""Seat map and order routes on a fake read side: cache, ETag/304, staleness, owner."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from gateway.coalescing import CoalescingCache
from gateway.read_views import add_read_routes
from gateway.testing import admission_headers, harness, serve
from projections.seats import SeatStatus
from tests.fakes.read_side import FakeReadSide, order, seat

SEATS = "/v1/shows/s1/sections/A/seats"


def app_with(side: FakeReadSide, ttl_seconds: float = 60.0) -> web.Application:
    gateway = harness()
    add_read_routes(gateway.app, side, ttl_seconds)
    return gateway.app


async def test_a_seat_map_lists_known_seats_with_staleness_when_asked() -> None:
    side = FakeReadSide()

    async with serve(app_with(side)) as client:
        response = await client.get(SEATS)
        body = orjson.loads(await response.read())

    assert response.status == 200
    assert body["seats"] == [
        {"seat_id": "A-1", "status": "held"},
        {"seat_id": "A-2", "status": "sold"},
    ]
    assert body["projection_lag_seconds"] == 0.25
    assert body["as_of"] == "2023-11-14T22:13:20.000Z"
    assert response.headers["Projection-Lag-Seconds"] == "0.250"


async def test_concurrent_seat_map_requests_share_one_read_when_not_cached() -> None:
    side = FakeReadSide()
    side.gate = asyncio.Event()

    async with serve(app_with(side)) as client:
        pending = [asyncio.ensure_future(client.get(SEATS)) for _ in range(50)]
        await asyncio.sleep(0.2)
        side.gate.set()
        responses = await asyncio.gather(*pending)

    assert {r.status for r in responses} == {200}
    assert side.seat_reads == 1


async def test_a_seat_map_answers_304_with_the_lag_when_the_etag_matches() -> None:
    side = FakeReadSide()

    async with serve(app_with(side, ttl_seconds=0.0)) as client:
        first = await client.get(SEATS)
        side.lag_seconds = 3.0  # the lag moves, the seats do not
        again = await client.get(
            SEATS, headers={"If-None-Match": first.headers["ETag"]}
        )
        side.seats[0] = seat("A-2", SeatStatus.FREE, offset=9)
        changed = await client.get(
            SEATS, headers={"If-None-Match": first.headers["ETag"]}
        )

    assert again.status == 304
    assert again.headers["Projection-Lag-Seconds"] == "3.000"
    assert changed.status == 200
    assert changed.headers["ETag"] != first.headers["ETag"]


async def test_an_order_is_answered_privately_when_the_buyer_owns_it() -> None:
    side = FakeReadSide()

    async with serve(app_with(side)) as client:
        response = await client.get(
            "/v1/orders/o1", headers=admission_headers("show-1", "b1")
        )
        body = orjson.loads(await response.read())

    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    assert body["order_id"] == "o1"
    assert body["ticket_ids"] == ["t1"]
    assert body["projection_lag_seconds"] == 0.25
    assert "buyer_id" not in body


async def test_another_buyers_order_is_not_found_when_asked_for() -> None:
    side = FakeReadSide()

    async with serve(app_with(side)) as client:
        theirs = await client.get(
            "/v1/orders/o2", headers=admission_headers("show-1", "b1")
        )
        theirs_body = orjson.loads(await theirs.read())
        anonymous = await client.get("/v1/orders/o1")
        anonymous_body = orjson.loads(await anonymous.read())

    assert theirs.status == 404
    assert theirs_body["type"] == "/problems/order-not-found"
    assert anonymous.status == 401
    assert anonymous_body["type"] == "/problems/unauthenticated"


async def test_my_orders_are_only_mine_when_listed() -> None:
    side = FakeReadSide()
    side.orders["o0"] = order("o0", "b1")

    async with serve(app_with(side)) as client:
        response = await client.get(
            "/v1/buyers/me/orders", headers=admission_headers("show-1", "b1")
        )
        body = orjson.loads(await response.read())

    assert [o["order_id"] for o in body["orders"]] == ["o0", "o1"]
    assert body["projection_lag_seconds"] == 0.25


async def test_a_failed_load_is_not_cached_when_the_next_request_comes() -> None:
    calls = []

    async def load(key: str) -> str:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("down")
        return key.upper()

    cache: CoalescingCache[str, str] = CoalescingCache(load, ttl_seconds=60)

    first = await asyncio.gather(cache.get("a"), return_exceptions=True)
    second = await cache.get("a")
    third = await cache.get("a")

    assert isinstance(first[0], RuntimeError)
    assert (second, third) == ("A", "A")
    assert calls == ["a", "a"]


async def test_orders_are_refused_to_a_named_buyer_or_a_token_not_theirs() -> None:
    side = FakeReadSide()
    stolen = admission_headers("show-1", "b1")

    async with serve(app_with(side)) as client:
        named = await client.get("/v1/buyers/me/orders", headers={"Buyer-Id": "b1"})
        other_device = await client.get(
            "/v1/orders/o1", headers={**stolen, "Device-Id": "another-device"}
        )
        forged = await client.get(
            "/v1/orders/o1",
            headers={**stolen, "Admission-Token": stolen["Admission-Token"][:-2]},
        )
        expired = await client.get(
            "/v1/orders/o1",
            headers=admission_headers("show-1", "b1", expires_at_ms=1_000),
        )
        answers = [
            (r.status, orjson.loads(await r.read())["type"])
            for r in (named, other_device, forged, expired)
        ]

    assert answers == [(401, "/problems/unauthenticated")] * 4
