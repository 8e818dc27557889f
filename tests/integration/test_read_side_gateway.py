"""The gateway's read side on the real Cassandra: coalescing counted in queries.

A session wrapper counts the queries the driver really sends, per table. Many
concurrent identical requests must cost one read of the table; the answers say
how stale they are; a replay switch-over moves the readers to the new keyspace.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from typing import Any

import orjson
import pytest
from aiohttp import web
from cassandra.cluster import Session

from gateway.availability import AvailabilityCache
from gateway.read_views import add_read_routes
from gateway.testing import admission_headers, harness, serve
from infra.settings import Settings
from projections.live_readers import LiveReadModels
from projections.reader import AvailabilityReader
from projections.replay_command import run_replay
from tests.fakes.sale_log import sale_log
from tests.integration.support import fold_to_end, wait_until_committed
from tests.integration.test_projection_worker import (
    produce,
    session,
    settings,
)

pytestmark = pytest.mark.integration
__all__ = ["session", "settings"]  # fixtures

CONCURRENT_REQUESTS = 200
SALE = sale_log(seed=3, steps=300, sections=3)


class CountingSession:
    """A real session that counts the statements it sends, by table."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.queries: Counter[str] = Counter()

    def execute_async(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        text = getattr(statement, "query_string", str(statement))
        table = text.split(" FROM ", 1)[1].split()[0].split(".")[-1]
        self.queries[table] += 1
        return self._session.execute_async(statement, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


async def test_concurrent_availability_requests_cost_one_cassandra_read(
    settings: Settings, session: Session
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    fold_to_end(settings)
    counting = CountingSession(session)
    reader = AvailabilityReader(counting, settings.cassandra_keyspace)  # type: ignore[arg-type]
    cache = AvailabilityCache(reader, ttl_seconds=5.0)

    views = await asyncio.gather(
        *(cache.get("show-1") for _ in range(CONCURRENT_REQUESTS))
    )

    assert counting.queries == {"availability_by_show": 1, "projection_offsets": 1}
    assert len({view.etag for view in views}) == 1
    body = orjson.loads(views[0].body)
    assert len(body["sections"]) == 3
    assert body["projection_lag_seconds"] is not None


async def test_concurrent_seat_map_requests_cost_one_cassandra_read_over_http(
    settings: Settings, session: Session
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    fold_to_end(settings)
    counting = CountingSession(session)
    live = LiveReadModels(counting, settings.cassandra_keyspace)  # type: ignore[arg-type]
    app = _app(live)
    path = "/v1/shows/show-1/sections/S0/seats"

    async with serve(app) as client:
        responses = await asyncio.gather(
            *(client.get(path) for _ in range(CONCURRENT_REQUESTS))
        )
        first = responses[0]
        body = orjson.loads(await first.read())
        again = await client.get(path, headers={"If-None-Match": first.headers["ETag"]})

    assert {r.status for r in responses} == {200}
    assert counting.queries["seats_by_section"] == 1
    assert again.status == 304
    assert body["seats"] and {s["status"] for s in body["seats"]} <= {
        "free",
        "held",
        "sold",
    }
    assert 0 <= body["projection_lag_seconds"] < 60
    assert float(again.headers["Projection-Lag-Seconds"]) >= 0


async def test_a_buyer_reads_their_orders_and_the_readers_follow_a_switch(
    settings: Settings, session: Session
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    fold_to_end(settings)
    clock = [0.0]
    live = LiveReadModels(session, settings.cassandra_keyspace, clock=lambda: clock[0])
    sold = [
        e for _, events in SALE for e in events if type(e).__name__ == "TicketsSold"
    ]
    buyer = sold[0].buyer_id  # type: ignore[attr-defined]
    theirs = [e for e in sold if e.buyer_id == buyer]  # type: ignore[attr-defined]
    rebuilt = f"{settings.cassandra_keyspace}_g"

    try:
        async with serve(_app(live)) as client:
            mine = await client.get(
                "/v1/buyers/me/orders",
                headers=admission_headers(sold[0].show_id, buyer),
            )
            mine_body = orjson.loads(await mine.read())
            order_id = mine_body["orders"][0]["order_id"]
            one = await client.get(
                f"/v1/orders/{order_id}",
                headers=admission_headers(sold[0].show_id, buyer),
            )
            await asyncio.to_thread(
                run_replay, settings, rebuilt, True, 120.0, io.StringIO()
            )
            clock[0] += 60.0
            await client.get(
                "/v1/buyers/me/orders",
                headers=admission_headers(sold[0].show_id, buyer),
            )
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {rebuilt}")

    assert mine.status == one.status == 200
    assert len(mine_body["orders"]) == len(theirs)
    assert mine_body["projection_lag_seconds"] is not None
    assert live.keyspace == rebuilt


def _app(live: LiveReadModels) -> web.Application:
    gateway = harness()
    add_read_routes(gateway.app, live, ttl_seconds=5.0)
    return gateway.app
