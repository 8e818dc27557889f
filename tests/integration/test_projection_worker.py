"""The projection worker against the real Kafka and Cassandra that ``infra`` starts.

Start them first with ``python -m infra.services up``. A service that is down makes
these tests fail, never skip. Each test gets its own topics, keyspace and consumer
group, and removes them at the end.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence

import pytest
from cassandra.cluster import Session
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from commands.errors import InfrastructureError
from commands.model import (
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    RejectionReason,
    SectionCreated,
    SectionKind,
    SectionRejected,
)
from infra.settings import Settings
from infra.topics import ensure_topics, events_topic, partition_for, topic_specs
from projections.availability import SectionAvailability
from projections.reader import AvailabilityReader, connect
from projections.schema import ensure_schema
from projections.store import AvailabilityStore
from projections.worker import ProjectionWorker
from schemas.codec import encode_events, event_headers

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 30.0
IDLE_SECONDS = 2.0
DOWN_HINT = "is it up? run: python -m infra.services up"
GA = SectionKind.GENERAL_ADMISSION


@pytest.fixture()
def settings() -> Iterator[Settings]:
    """Settings with a topic prefix, keyspace and group of their own, then cleanup."""
    run = uuid.uuid4().hex[:12]
    ours = dataclasses.replace(
        Settings.from_env(),
        topic_prefix=f"t{run}",
        cassandra_keyspace=f"t_{run}",
        projection_group=f"t-{run}-projection",
        command_partitions=4,
    )
    try:
        ensure_topics(ours, timeout_seconds=10.0)
    except InfrastructureError as exc:
        pytest.fail(f"Kafka not answering ({exc}); {DOWN_HINT}")
    yield ours
    admin = AdminClient({"bootstrap.servers": ours.kafka_bootstrap})
    names = [spec.name for spec in topic_specs(ours)]
    for future in admin.delete_topics(names, operation_timeout=10).values():
        future.result(timeout=TIMEOUT_SECONDS)
    groups = admin.delete_consumer_groups([ours.projection_group], request_timeout=10)
    for future in groups.values():
        try:
            future.result(timeout=TIMEOUT_SECONDS)
        except KafkaException as exc:  # no worker ran, so no group was made
            if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                raise


@pytest.fixture()
def session(settings: Settings) -> Iterator[Session]:
    """A CQL session with the test keyspace created, dropped afterwards."""
    try:
        cluster, cql = connect(settings)
    except InfrastructureError as exc:
        pytest.fail(f"{exc}; {DOWN_HINT}")
    ensure_schema(cql, settings.cassandra_keyspace)
    yield cql
    cql.execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}")
    cluster.shutdown()


def produce(settings: Settings, records: Sequence[Sequence[Event] | bytes]) -> None:
    """Write event batches (or raw bytes) in one committed transaction."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "transactional.id": f"test-{uuid.uuid4().hex}",
        }
    )
    producer.init_transactions(TIMEOUT_SECONDS)
    producer.begin_transaction()
    for record in records:
        key = "s1/A" if isinstance(record, bytes) else _key(record[0])
        value = record if isinstance(record, bytes) else encode_events(record)
        producer.produce(
            events_topic(settings),
            value=value,
            key=key,
            partition=partition_for(key, settings.command_partitions),
            headers=event_headers(),
        )
    producer.commit_transaction(TIMEOUT_SECONDS)


def _key(event: Event) -> str:
    return f"{event.show_id}/{event.section_id}"


def fold_until_idle(settings: Settings) -> ProjectionWorker:
    """Run a fresh worker until it has been idle for a while."""
    worker = ProjectionWorker(settings)
    worker.run(stop_after_idle_seconds=IDLE_SECONDS, max_seconds=60.0)
    return worker


def stored_rows(settings: Settings, session: Session) -> dict[str, SectionAvailability]:
    """Every stored row by ``show/section``."""
    store = AvailabilityStore(session, settings.cassandra_keyspace)
    rows = store.load_rows(range(settings.command_partitions))
    return {f"{row.show_id}/{row.section_id}": row for row in rows}


def counts(rows: dict[str, SectionAvailability]) -> dict[str, tuple[int, int, int]]:
    """(capacity, held, free) by ``show/section``."""
    return {key: (row.capacity, row.held, row.free) for key, row in rows.items()}


SALE: list[Sequence[Event] | bytes] = [
    [SectionCreated("c1", 1, "s1", "A", GA, 100, 600)],
    [SectionCreated("c2", 1, "s1", "B", SectionKind.RESERVED, 4, 600)],
    [SectionCreated("c3", 1, "s2", "A", GA, 50, 600)],
    [
        HoldPlaced("c4", 2, "h1", "s1", "A", "b1", (), 5, 602),
        HoldPlaced("c5", 2, "h2", "s1", "A", "b2", (), 3, 602),
    ],
    [HoldPlaced("c6", 3, "h3", "s1", "B", "b3", ("r-1", "r-2"), 2, 603)],
    [HoldPlaced("c7", 3, "h4", "s2", "A", "b4", (), 10, 603)],
    b"not an event batch",
    [HoldExpired("c8", 602, "h1", "s1", "A", (), 5)],
    [HoldRejected("c9", 603, "s1", "A", "b5", RejectionReason.SOLD_OUT, "none")],
    [SectionRejected("c10", 604, "s2", "A", RejectionReason.SECTION_EXISTS)],
]
SALE_EVENTS = sum(len(r) for r in SALE if not isinstance(r, bytes))
ROW_EVENTS = SALE_EVENTS - 2
"""The two refusals change no row, so they are not applied."""
AFTER_SALE = {"s1/A": (100, 3, 97), "s1/B": (4, 2, 2), "s2/A": (50, 10, 40)}


def test_rows_match_the_log_when_the_worker_has_folded_it(
    settings: Settings, session: Session
) -> None:
    produce(settings, SALE)

    worker = fold_until_idle(settings)

    assert counts(stored_rows(settings, session)) == AFTER_SALE
    assert worker.counts.records == len(SALE)
    assert worker.counts.events_applied == ROW_EVENTS
    assert worker.counts.undecodable_records == 1


def test_rows_are_unchanged_when_the_log_is_delivered_again(
    settings: Settings, session: Session
) -> None:
    produce(settings, SALE)
    fold_until_idle(settings)
    before = stored_rows(settings, session)
    store = AvailabilityStore(session, settings.cassandra_keyspace)
    store.save_offsets(dict.fromkeys(range(settings.command_partitions), 0))

    again = fold_until_idle(settings)

    assert stored_rows(settings, session) == before
    assert again.counts.records == len(SALE)
    assert again.counts.events_applied == 0
    assert again.counts.events_skipped == SALE_EVENTS


def test_a_restarted_worker_continues_when_offsets_were_saved(
    settings: Settings, session: Session
) -> None:
    produce(settings, SALE)
    fold_until_idle(settings)
    more: list[Sequence[Event] | bytes] = [
        [HoldExpired("c11", 605, "h4", "s2", "A", (), 10)],
        [HoldPlaced("c12", 606, "h5", "s1", "A", "b6", (), 7, 1206)],
    ]
    produce(settings, more)

    restarted = fold_until_idle(settings)

    rows = counts(stored_rows(settings, session))
    assert rows == {"s1/A": (100, 10, 90), "s1/B": (4, 2, 2), "s2/A": (50, 0, 50)}
    assert restarted.counts.records == len(more)
    assert restarted.counts.events_skipped == 0
    assert restarted.lag() == {}


async def test_reader_returns_the_sections_of_a_show_when_rows_are_stored(
    settings: Settings, session: Session
) -> None:
    store = AvailabilityStore(session, settings.cassandra_keyspace)
    rows = [
        SectionAvailability("s9", s, GA, 10, 1, 0, 9, 600, 0, 4, 0, 1_700_000_000_123)
        for s in ("B", "A")
    ]
    store.save_rows(rows)
    reader = AvailabilityReader(session, settings.cassandra_keyspace)

    found = await reader.by_show("s9")
    missing = await reader.by_show("nope")

    assert [row.section_id for row in found] == ["A", "B"]
    assert found[0] == dataclasses.replace(rows[1])
    assert missing == []
