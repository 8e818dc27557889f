"""The gateway on the real Cassandra read models: answers after a restart.

A fresh app (a new outcome book, as at another instance or after a restart) reads
the real ``HoldReader`` and ``AvailabilityReader``; only the command log is faked,
so what these tests prove is that nothing is sent when the read models know.
Start the services first with ``python -m infra.services up``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web
from cassandra.cluster import Session

from commands.errors import InfrastructureError
from commands.model import SectionKind
from gateway.app import create_app
from gateway.book import OutcomeBook
from gateway.holds import hold_command_id
from gateway.testing import FakeBus, admission_headers, serve
from infra.settings import Settings
from projections.availability import SectionAvailability
from projections.hold_reader import HoldReader
from projections.holds import HoldStatus, HoldView
from projections.reader import AvailabilityReader, connect
from projections.schema import ensure_schema
from projections.store import AvailabilityStore

pytestmark = pytest.mark.integration

HOLD_ID = hold_command_id("buyer-1", "key-1")
HOLD_PATH = "/v1/shows/s1/sections/a/holds"


@pytest.fixture(scope="module")
def settings() -> Settings:
    """Settings with a keyspace of their own."""
    return dataclasses.replace(
        Settings.from_env(), cassandra_keyspace=f"g_{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture(scope="module")
def session(settings: Settings) -> Iterator[Session]:
    """A session on the test keyspace with one hold and one section, then dropped."""
    try:
        cluster, cql = connect(settings)
    except InfrastructureError as exc:
        pytest.fail(f"{exc}; is it up? run: python -m infra.services up")
    ensure_schema(cql, settings.cassandra_keyspace)
    store = AvailabilityStore(cql, settings.cassandra_keyspace)
    store.save_holds(
        [
            HoldView(
                hold_id=HOLD_ID,
                show_id="s1",
                section_id="a",
                status=HoldStatus.HELD,
                log_partition=0,
                log_offset=5,
                log_index=0,
                updated_at_ms=1_000,
                buyer_id="buyer-1",
                seat_ids=(),
                quantity=2,
                expires_at_ms=1_700_000_600_000,
            )
        ]
    )
    store.save_rows(
        [
            SectionAvailability(
                show_id="s1",
                section_id="a",
                kind=SectionKind.GENERAL_ADMISSION,
                capacity=10,
                held=2,
                sold=0,
                free=8,
                hold_ttl_seconds=600,
                log_partition=0,
                log_offset=5,
                updated_at_ms=1_000,
            )
        ]
    )
    yield cql
    cql.execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}")
    cluster.shutdown()


def fresh_gateway(
    settings: Settings, session: Session
) -> tuple[web.Application, FakeBus]:
    """A new gateway instance on the real read models and a recording bus."""
    book = OutcomeBook()
    bus = FakeBus(book)
    keyspace = settings.cassandra_keyspace
    app = create_app(
        settings,
        bus,
        book,
        AvailabilityReader(session, keyspace),
        HoldReader(session, keyspace),
    )
    return app, bus


async def test_retry_at_a_fresh_instance_answers_the_hold_when_projected(
    settings: Settings, session: Session
) -> None:
    app, bus = fresh_gateway(settings, session)
    hold = {"buyer_id": "buyer-1", "quantity": 2}

    async with serve(app) as client:
        retry = await client.post(
            HOLD_PATH,
            json=hold,
            headers={
                "Idempotency-Key": "key-1",
                **admission_headers("s1", "buyer-1", settings=settings),
            },
        )
        retry_body = orjson.loads(await retry.read())
        polled = await client.get(f"/v1/holds/{HOLD_ID}")
        missing = await client.get("/v1/holds/0000")

    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert (retry_body["hold_id"], retry_body["status"]) == (HOLD_ID, "held")
    assert polled.status == 201
    assert missing.status == 404
    assert len(bus.sent) == 1, "sent again; the buyers' ledger ignores it"


async def test_show_answers_409_show_exists_when_the_read_model_has_it(
    settings: Settings, session: Session
) -> None:
    app, bus = fresh_gateway(settings, session)
    show = {
        "show_id": "s1",
        "sections": [{"section_id": "b", "kind": "general_admission", "capacity": 5}],
    }

    async with serve(app) as client:
        response = await client.post("/v1/shows", json=show)
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert body["type"] == "/problems/show-exists"
    assert bus.sent == []
