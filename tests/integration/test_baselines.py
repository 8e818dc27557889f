"""The PostgreSQL and Redis baselines never oversell under concurrent holds.

Runs against a real PostgreSQL and Redis that the fixtures start on loopback
from Debian's packages (installed when missing), as ``python -m bench.baselines``
does.
"""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from bench import baseline_postgres, baseline_servers
from bench.baseline_load import drive
from bench.baseline_redis import RedisHolds
from bench.baseline_stats import Workload

PLACES = 50
WORKLOAD = Workload(places=PLACES, buyers=300, clients=32, time_limit_seconds=60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[baseline_servers.PostgresServer]:
    with baseline_servers.postgres(_free_port(), max_connections=50) as server:
        yield server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[baseline_servers.RedisServer]:
    with baseline_servers.redis(_free_port()) as server:
        yield server


@pytest.fixture
async def pool(
    postgres_server: baseline_servers.PostgresServer,
) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(postgres_server.dsn, max_size=32) as pool:
        async with pool.acquire() as connection:
            await connection.execute("DROP TABLE IF EXISTS sections, seats, holds")
            await baseline_postgres.create_schema(connection)
        yield pool


@pytest.fixture
async def redis_holds(
    redis_server: baseline_servers.RedisServer,
) -> AsyncIterator[RedisHolds]:
    client = aioredis.Redis.from_url(redis_server.url, max_connections=32)
    yield RedisHolds(client)
    await client.aclose()


async def test_lua_script_never_oversells_when_buyers_race(
    redis_holds: RedisHolds,
) -> None:
    await redis_holds.add_ga_section("ga", PLACES)

    async def request(buyer: int) -> bool:
        return await redis_holds.place_ga_hold(f"h{buyer}", "ga", 1)

    outcome = await drive(request, WORKLOAD)

    assert (outcome.placed, outcome.rejected, outcome.errors) == (PLACES, 250, 0)
    assert await redis_holds.held_places("ga") == PLACES
    assert await redis_holds.remaining("ga") == 0


async def test_lua_script_gives_the_first_answer_when_a_hold_is_retried(
    redis_holds: RedisHolds,
) -> None:
    await redis_holds.add_ga_section("one", 1)

    first = await redis_holds.place_ga_hold("a", "one", 1)
    retried = await redis_holds.place_ga_hold("a", "one", 1)
    other = await redis_holds.place_ga_hold("b", "one", 1)

    assert (first, retried, other) == (True, True, False)
    assert await redis_holds.held_places("one") == 1


async def test_row_lock_never_oversells_a_ga_section_when_buyers_race(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        await baseline_postgres.add_ga_section(connection, "ga", PLACES)

    async def request(buyer: int) -> bool:
        async with pool.acquire() as connection:
            return await baseline_postgres.place_ga_hold(
                connection, f"h{buyer}", "ga", f"b{buyer}", 1
            )

    outcome = await drive(request, WORKLOAD)

    assert (outcome.placed, outcome.rejected, outcome.errors) == (PLACES, 250, 0)
    async with pool.acquire() as connection:
        assert await baseline_postgres.held_places(connection, "ga") == PLACES
        remaining = await connection.fetchval(
            "SELECT remaining FROM sections WHERE section_id = 'ga'"
        )
    assert remaining == 0


async def test_row_lock_gives_the_first_answer_when_a_hold_is_retried(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        await baseline_postgres.add_ga_section(connection, "one", 1)

        first = await baseline_postgres.place_ga_hold(connection, "a", "one", "x", 1)
        retried = await baseline_postgres.place_ga_hold(connection, "a", "one", "x", 1)
        other = await baseline_postgres.place_ga_hold(connection, "b", "one", "y", 1)

        assert (first, retried, other) == (True, True, False)
        assert await baseline_postgres.held_places(connection, "one") == 1


async def test_seat_locks_never_give_a_seat_twice_when_buyers_race(
    pool: asyncpg.Pool,
) -> None:
    seats = [f"s{n:02}" for n in range(20)]
    async with pool.acquire() as connection:
        await baseline_postgres.add_reserved_section(connection, "rs", seats)
    rng = random.Random(7)
    wanted = [tuple(rng.sample(seats, 2)) for _ in range(200)]

    async def request(buyer: int) -> bool:
        async with pool.acquire() as connection:
            return await baseline_postgres.place_seat_hold(
                connection, f"h{buyer}", "rs", f"b{buyer}", wanted[buyer]
            )

    outcome = await drive(request, Workload(len(seats), len(wanted), 32, 60))

    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT hold_id, seat_ids FROM holds WHERE section_id = 'rs'"
        )
        held = await connection.fetchval(
            "SELECT count(*) FROM seats WHERE section_id = 'rs' AND hold_id IS NOT NULL"
        )
    given = [seat for row in rows for seat in row["seat_ids"]]
    assert outcome.errors == 0
    assert outcome.placed == len(rows) > 0
    assert len(given) == len(set(given)) == held
    assert all(
        set(row["seat_ids"]) == set(wanted[int(row["hold_id"][1:])]) for row in rows
    )
