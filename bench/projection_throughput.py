"""Events per second one projection worker applies, and cached availability reads.

Fills a fresh events topic with a generated sale (``tests.fakes.sale_log``: holds,
checkouts, sales, expiries over many sections), then times one in-process
``ProjectionWorker`` from start until every record is stored in a fresh keyspace
(all five tables and the offsets). Then times availability reads through the
gateway's cache: in-process ``AvailabilityCache.get`` calls, and HTTP GETs of
``/v1/shows/{id}/availability`` against the gateway app on loopback.

Needs the services (``ticketing services up``). Usage::

    python -m bench.projection_throughput [--steps N] [--rows-per-batch N]

``--rows-per-batch 1`` writes each row in its own request, as the worker did
before batching, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from gateway.availability import AvailabilityCache
from gateway.testing import harness, serve
from infra.settings import Settings
from infra.topics import ensure_topics, events_topic, partition_for, topic_specs
from projections import batch_writes
from projections.batches import BATCH_MAX_RECORDS
from projections.cql import connect
from projections.projector import Projector, WorkerCounts
from projections.reader import AvailabilityReader
from projections.replay_command import fold_to_ends, log_ends
from schemas.codec import encode_events, event_headers
from tests.fakes.log_records import encoded
from tests.fakes.sale_log import LogRecord, sale_log

SECTIONS = 48
SEATS_PER_SECTION = 400
READ_SECONDS = 5.0
HTTP_CONCURRENCY = 32


def _produce(settings: Settings, records: list[LogRecord]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "transactional.id": f"bench-{uuid.uuid4().hex}",
            "linger.ms": 20,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for key, events in records:
        producer.produce(
            events_topic(settings),
            value=encode_events(events),
            key=key,
            partition=partition_for(key, settings.command_partitions),
            headers=event_headers(),
        )
        producer.poll(0)
    producer.commit_transaction(60)


async def _cached_reads(settings: Settings, shows: list[str]) -> tuple[float, float]:
    """(cache gets per second in-process, HTTP GETs per second) over READ_SECONDS."""
    cluster, session = connect(settings)
    try:
        reader = AvailabilityReader(session, settings.cassandra_keyspace)
        cache = AvailabilityCache(reader, settings.availability_cache_ttl_seconds)
        gets = 0
        deadline = time.monotonic() + READ_SECONDS
        while time.monotonic() < deadline:
            for show in shows:
                await cache.get(show)
            gets += len(shows)
        in_process = gets / READ_SECONDS

        gateway = harness(cache_ttl_seconds=settings.availability_cache_ttl_seconds)
        gateway.availability.view = reader.view  # type: ignore[method-assign]
        async with serve(gateway.app) as client:
            done = 0
            stop_at = time.monotonic() + READ_SECONDS

            async def loop(i: int) -> None:
                nonlocal done
                while time.monotonic() < stop_at:
                    path = f"/v1/shows/{shows[i % len(shows)]}/availability"
                    async with client.get(path) as response:
                        await response.read()
                        assert response.status == 200
                    done += 1

            await asyncio.gather(*(loop(i) for i in range(HTTP_CONCURRENCY)))
        return in_process, done / READ_SECONDS
    finally:
        cluster.shutdown()


class _NullStore:
    """A store that keeps nothing: times decoding and folding alone."""

    def load_rows(self, partitions: object) -> list[object]:
        return []

    def load_progress(self) -> dict[int, object]:
        return {}

    def save_all(self, *changes: object) -> None:
        pass

    def save_progress(self, progress: object) -> None:
        pass


def _fold_only(records: list[LogRecord], partitions: int) -> float:
    """Events per second decoded and folded in memory, in batches of 1000."""
    projector = Projector(_NullStore(), WorkerCounts())  # type: ignore[arg-type]
    encoded_records = encoded(records, partitions)
    started = time.perf_counter()
    for start in range(0, len(encoded_records), BATCH_MAX_RECORDS):
        for record in encoded_records[start : start + BATCH_MAX_RECORDS]:
            projector.fold(record.partition, record.offset, record)
        projector.save()
    events = sum(len(batch) for _, batch in records)
    return events / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument(
        "--rows-per-batch", type=int, default=batch_writes.ROWS_PER_BATCH
    )
    args = parser.parse_args()
    batch_writes.ROWS_PER_BATCH = args.rows_per_batch  # type: ignore[misc]

    run = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(
        Settings.from_env(),
        topic_prefix=f"bench-{run}",
        cassandra_keyspace=f"bench_{run}",
        projection_group=f"bench-{run}-projection",
        log_level="WARNING",
    )
    ensure_topics(settings)
    records = sale_log(
        seed=1,
        steps=args.steps,
        sections=SECTIONS,
        seats_per_section=SEATS_PER_SECTION,
        buyers=5000,
    )
    events = sum(len(batch) for _, batch in records)
    print(
        f"decode and fold only (no writes): "
        f"{_fold_only(records, settings.command_partitions):,.0f} events/s"
    )
    _produce(settings, records)
    try:
        started = time.monotonic()
        counts = fold_to_ends(settings, log_ends(settings), 600.0, io.StringIO())
        elapsed = time.monotonic() - started
        print(
            f"records {counts.records}, events {events}, rows per batch "
            f"{args.rows_per_batch}"
        )
        print(
            f"projection: {events / elapsed:,.0f} events/s wall "
            f"({elapsed:.1f} s, start-up and rebalance included), "
            f"{events / counts.busy_seconds:,.0f} events/s busy "
            f"({counts.busy_seconds:.1f} s folding and writing)"
        )
        print(
            f"rows written: availability {counts.rows_written}, holds "
            f"{counts.hold_changes_written}, seats {counts.seat_changes_written}, "
            f"orders {counts.orders_written}"
        )
        in_process, http = asyncio.run(_cached_reads(settings, ["show-1"]))
        print(
            f"cached availability reads: {in_process:,.0f}/s in-process, "
            f"{http:,.0f}/s over HTTP ({HTTP_CONCURRENCY} concurrent, one process)"
        )
    finally:
        cluster, session = connect(settings)
        session.execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}")
        cluster.shutdown()
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        names = [spec.name for spec in topic_specs(settings)]
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=30)


if __name__ == "__main__":
    main()
