"""The Cassandra room store, shared by two gateway app instances.

The mark is advanced by compare-and-set, so two instances pumping the same room
at the same moments let one advance count; the buyer's bucket (case C6) and an
admission token's quota hold across both instances.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

from commands.errors import InfrastructureError
from gateway.deps import ROOMS
from gateway.room_cassandra import CassandraRoomStore, ensure_room_schema
from gateway.testing import admission_headers, harness, serve
from gateway.waiting_room import EARLY_SLOT, advance
from infra.settings import Settings
from projections.reader import connect
from projections.schema import ensure_schema
from tests.unit.test_gateway_holds import HOLD_PATH, place
from tests.unit.test_gateway_queue import Clock

pytestmark = pytest.mark.integration

OPENS_MS = 1_780_000_000_000


@pytest.fixture(scope="module")
def settings() -> Settings:
    return dataclasses.replace(
        Settings.from_env(), cassandra_keyspace=f"r_{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture(scope="module")
def session(settings: Settings) -> Iterator[Session]:
    try:
        cluster, cql = connect(settings)
    except InfrastructureError as exc:
        pytest.fail(f"{exc}; is it up? run: python -m infra.services up")
    ensure_schema(cql, settings.cassandra_keyspace)
    ensure_room_schema(cql, settings.cassandra_keyspace)
    yield cql
    cql.execute(f"DROP KEYSPACE {settings.cassandra_keyspace}")
    cluster.shutdown()


def store(settings: Settings, session: Session) -> CassandraRoomStore:
    return CassandraRoomStore(session, settings.cassandra_keyspace)


async def test_an_advance_from_a_stale_view_is_refused_and_the_pump_reloads(
    settings: Settings, session: Session
) -> None:
    show = f"show-{uuid.uuid4().hex[:6]}"
    shared = store(settings, session)
    await shared.open_room(show, OPENS_MS, 100.0)
    await asyncio.gather(*(shared.count_join(show, EARLY_SLOT) for _ in range(200)))
    seen = await shared.load(show)
    assert seen is not None and seen.early_joins == 200

    first = advance(seen, OPENS_MS + 500, 100.0)
    stale = advance(seen, OPENS_MS + 600, 100.0)
    saved = await shared.save_mark(seen, first)
    refused = await shared.save_mark(seen, stale)
    clock = Clock((OPENS_MS + 600) / 1000)
    other = harness(place, rooms=shared, wall_clock=clock)  # type: ignore[arg-type]
    pumped = await other.app[ROOMS].pump(show)

    assert saved and not refused
    assert pumped is not None
    assert pumped.mark == pytest.approx(60 / 200), "0.5 s then 0.1 s, counted once"


async def test_two_instances_pumping_together_let_the_rate_through_once(
    settings: Settings, session: Session
) -> None:
    show = f"show-{uuid.uuid4().hex[:6]}"
    clock = Clock(OPENS_MS / 1000)
    instances = [
        harness(place, rooms=store(settings, session), wall_clock=clock)  # type: ignore[arg-type]
        for _ in range(2)
    ]
    rooms = [gateway.app[ROOMS] for gateway in instances]
    await rooms[0].open(show, OPENS_MS, 100.0)
    await asyncio.gather(
        *(rooms[0].store.count_join(show, EARLY_SLOT) for _ in range(1000))
    )

    for step in range(1, 5):
        clock.now = OPENS_MS / 1000 + step * 0.5 + (0.01 if step % 2 else 0)
        await asyncio.gather(rooms[0].pump(show), rooms[1].pump(show))
    final = await rooms[1].store.load(show)

    assert final is not None
    assert final.mark == pytest.approx(200 / 1000), "2 s at 100/s over 1000 early"


async def test_c6_the_buyers_bucket_holds_across_two_instances_in_cassandra(
    settings: Settings, session: Session
) -> None:
    clock = Clock(1_780_000_000.0)
    limits = {"gateway_buyer_burst": 2, "gateway_buyer_commands_per_second": 0.2}
    shared = store(settings, session)
    instances = [
        harness(place, rooms=shared, wall_clock=clock, **limits)  # type: ignore[arg-type]
        for _ in range(2)
    ]
    buyer = f"buyer-{uuid.uuid4().hex[:6]}"
    token = admission_headers("s1", buyer)
    body = {"buyer_id": buyer, "quantity": 1}
    answers = []

    async with serve(instances[0].app) as a, serve(instances[1].app) as b:
        for n, at in enumerate((0, 0.01, 0.02, 5.0, 5.01, 10.0)):
            clock.now = 1_780_000_000.0 + at
            response = await (a, b)[n % 2].post(
                HOLD_PATH, json=body, headers={"Idempotency-Key": f"k{n}", **token}
            )
            answers.append((response.status, response.headers.get("Retry-After")))

    assert answers == [
        (201, None),
        (201, None),
        (429, "5"),
        (201, None),
        (429, "5"),
        (201, None),
    ]


async def test_a_tokens_quota_holds_when_two_instances_charge_it_at_once(
    settings: Settings, session: Session
) -> None:
    shared = store(settings, session)
    token_id = uuid.uuid4().hex

    granted = await asyncio.gather(
        *(shared.use_quota(token_id, f"cmd-{n}", 3) for n in range(10))
    )
    again = await shared.use_quota(token_id, "cmd-0", 3)
    winners = [n for n, ok in enumerate(granted) if ok]

    assert len(winners) == 3
    assert await shared.use_quota(token_id, f"cmd-{winners[0]}", 3)
    assert again == (0 in winners)
