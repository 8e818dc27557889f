"""GET availability: TTL cache, request coalescing, weak ETags and 304."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from commands.model import SectionKind
from gateway.availability import AvailabilityCache, etag_matches
from gateway.testing import FakeAvailability, FakeShowView, harness, serve

PATH = "/v1/shows/s1/availability"


@dataclass(frozen=True)
class Row:
    """The fields of a SectionAvailability that the gateway reads."""

    show_id: str
    section_id: str
    kind: SectionKind
    capacity: int
    held: int
    sold: int
    free: int


ROWS = [
    Row("s1", "b", SectionKind.GENERAL_ADMISSION, 100, 5, 10, 85),
    Row("s1", "a", SectionKind.RESERVED, 2, 1, 0, 1),
]


async def test_availability_answers_sections_when_the_show_exists() -> None:
    gateway = harness()
    gateway.availability.rows["s1"] = ROWS

    async with serve(gateway.app) as client:
        response = await client.get(PATH)
        body = orjson.loads(await response.read())

    assert response.status == 200
    assert response.headers["Cache-Control"] == "max-age=1"
    assert response.headers["ETag"].startswith('W/"')
    assert body == {
        "show_id": "s1",
        "sections": [
            {
                "section_id": "a",
                "kind": "reserved",
                "capacity": 2,
                "free": 1,
                "held": 1,
                "sold": 0,
            },
            {
                "section_id": "b",
                "kind": "general_admission",
                "capacity": 100,
                "free": 85,
                "held": 5,
                "sold": 10,
            },
        ],
        "as_of": None,
        "projection_lag_seconds": None,
    }


async def test_fifty_concurrent_reads_make_one_source_call_when_coalesced() -> None:
    gateway = harness()
    gateway.availability.rows["s1"] = ROWS
    gateway.availability.delay_seconds = 0.05

    async with serve(gateway.app) as client:
        responses = await asyncio.gather(*(client.get(PATH) for _ in range(50)))
        bodies = {await r.read() for r in responses}

    assert {r.status for r in responses} == {200}
    assert len(bodies) == 1
    assert gateway.availability.calls == 1


async def test_availability_answers_304_when_if_none_match_matches() -> None:
    gateway = harness()
    gateway.availability.rows["s1"] = ROWS

    async with serve(gateway.app) as client:
        first = await client.get(PATH)
        again = await client.get(PATH, headers={"If-None-Match": first.headers["ETag"]})
        other = await client.get(PATH, headers={"If-None-Match": 'W/"other"'})

    assert again.status == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert other.status == 200


async def test_availability_answers_404_problem_when_the_show_is_unknown() -> None:
    gateway = harness()

    async with serve(gateway.app) as client:
        response = await client.get("/v1/shows/nope/availability")
        body = orjson.loads(await response.read())

    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert body["type"] == "/problems/show-not-found"


async def test_cache_reads_the_source_again_when_the_ttl_has_passed() -> None:
    now = [0.0]
    source = FakeAvailability(rows={"s1": list(ROWS)})
    cache = AvailabilityCache(source, ttl_seconds=0.5, clock=lambda: now[0])

    first = await cache.get("s1")
    await cache.get("s1")
    now[0] = 0.6
    source.rows["s1"] = ROWS[:1]
    later = await cache.get("s1")

    assert source.calls == 2
    assert first.etag != later.etag


async def test_source_errors_reach_every_waiter_and_are_not_cached_when_raised() -> (
    None
):
    class Broken(FakeAvailability):
        async def view(self, show_id: str) -> FakeShowView:
            self.calls += 1
            await asyncio.sleep(0.01)
            raise RuntimeError("down")

    source = Broken()
    cache = AvailabilityCache(source, ttl_seconds=60)

    results = await asyncio.gather(
        *(cache.get("s1") for _ in range(5)), return_exceptions=True
    )
    await asyncio.gather(cache.get("s1"), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in results)
    assert source.calls == 2


def test_etag_matches_weakly_when_compared() -> None:
    assert etag_matches('"abc"', 'W/"abc"')
    assert etag_matches('W/"x", W/"abc"', 'W/"abc"')
    assert etag_matches("*", 'W/"abc"')
    assert not etag_matches(None, 'W/"abc"')
    assert not etag_matches('W/"abd"', 'W/"abc"')


async def test_availability_says_how_fresh_it_is_when_the_view_knows() -> None:
    gateway = harness()
    gateway.availability.rows["s1"] = ROWS
    gateway.availability.as_of_ms = 1_700_000_000_000
    gateway.availability.lag_seconds = 1.25

    async with serve(gateway.app) as client:
        response = await client.get(PATH)
        body = orjson.loads(await response.read())

    assert body["as_of"] == "2023-11-14T22:13:20.000Z"
    assert body["projection_lag_seconds"] == 1.25
    assert response.headers["Projection-Lag-Seconds"] == "1.250"


async def test_etag_stays_and_304_carries_the_new_lag_when_only_lag_changes() -> None:
    gateway = harness(cache_ttl_seconds=0)
    gateway.availability.rows["s1"] = ROWS
    gateway.availability.as_of_ms = 1_700_000_000_000
    gateway.availability.lag_seconds = 0.5

    async with serve(gateway.app) as client:
        first = await client.get(PATH)
        gateway.availability.lag_seconds = 7.0
        again = await client.get(PATH, headers={"If-None-Match": first.headers["ETag"]})

    assert again.status == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Projection-Lag-Seconds"] == "7.000"
    assert gateway.availability.calls == 2


async def test_etag_changes_when_the_rows_change() -> None:
    gateway = harness(cache_ttl_seconds=0)
    gateway.availability.rows["s1"] = ROWS
    gateway.availability.as_of_ms = 1_700_000_000_000

    async with serve(gateway.app) as client:
        first = await client.get(PATH)
        gateway.availability.as_of_ms = 1_700_000_000_001
        later_event = await client.get(
            PATH, headers={"If-None-Match": first.headers["ETag"]}
        )
        gateway.availability.rows["s1"] = ROWS[:1]
        fewer_rows = await client.get(PATH)

    assert later_event.status == 200
    assert len({first.headers["ETag"], later_event.headers["ETag"]}) == 2
    assert fewer_rows.headers["ETag"] != later_event.headers["ETag"]
