"""Writing many rows at once: unlogged batches grouped by partition, concurrently.

One request per row costs the driver about as much CPU as Cassandra spends on the
write, and a worker that waited for each was held to a few thousand rows a
second. Rows are grouped by partition key into unlogged batches: the rows of one
partition (the seats of a section) share a batch, which Cassandra applies as one
mutation; rows of one-row partitions (holds, orders) are packed together, which
saves round trips. The batches then run ``BATCH_CONCURRENCY`` at a time. Each
statement keeps its own ``USING TIMESTAMP``, so batching changes no outcome, only
the cost.

An unlogged batch is not atomic across partitions; nothing here needs it to be:
a failed call is repeated whole, and every write is idempotent.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from projections.cql import CASSANDRA_ERRORS, infrastructure_error

ROWS_PER_BATCH: Final = 20
"""Most rows of different partitions packed into one batch."""
PARTITION_ROWS_PER_BATCH: Final = 250
"""Most rows of one partition in one batch (Cassandra applies it as one mutation)."""
BATCH_BYTES: Final = 24 * 1024
"""Most bound bytes (estimated) per batch: below Cassandra's 50 KiB refusal."""
BATCH_CONCURRENCY: Final = 32

# TODO(limit): one worker applies about 6,500-8,400 events/s on the 2-core dev box
# (bench/projection_throughput.py), short of 20,000. Per event it spends ~21 us
# decoding and folding and ~30 us of driver CPU per row written (~2.2 rows per
# event), and Cassandra ~60 us per one-row partition on the same cores. Next
# steps when the projection lags a sale: fold batch N+1 while batch N's writes
# are in flight (offsets still saved after both), and more workers (they scale
# with the topic's partitions).

# TODO(limit): batches that pack several partitions go through one coordinator,
# which forwards each row to its replicas. On one node that is free; on a cluster
# of many nodes, group rows by token range (the driver's token map) when
# coordinator CPU shows in write latency.


def batches_of(
    statement: Any, rows: Sequence[tuple[Hashable, tuple[Any, ...]]]
) -> list[BatchStatement]:
    """Unlogged batches of ``(partition key, bind values)``.

    Rows of one partition share batches of up to ``PARTITION_ROWS_PER_BATCH``;
    partitions with one row are packed ``ROWS_PER_BATCH`` to a batch; no batch
    holds more than about ``BATCH_BYTES``.
    """
    by_partition: dict[Hashable, list[tuple[Any, ...]]] = {}
    for key, params in rows:
        by_partition.setdefault(key, []).append(params)
    chunks: list[list[tuple[Any, ...]]] = []
    singles: list[tuple[Any, ...]] = []
    for group in by_partition.values():
        if len(group) == 1:
            singles.extend(group)
        else:
            chunks.extend(_chunks(group, PARTITION_ROWS_PER_BATCH))
    chunks.extend(_chunks(singles, ROWS_PER_BATCH))
    batches = []
    for chunk in chunks:
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for params in chunk:
            batch.add(statement, params)
        batches.append(batch)
    return batches


def _chunks(
    rows: Sequence[tuple[Any, ...]], most_rows: int
) -> list[list[tuple[Any, ...]]]:
    """Consecutive chunks of at most ``most_rows`` rows and about BATCH_BYTES."""
    chunks: list[list[tuple[Any, ...]]] = []
    chunk: list[tuple[Any, ...]] = []
    size = 0
    for params in rows:
        row_size = _estimated_bytes(params)
        if chunk and (len(chunk) >= most_rows or size + row_size > BATCH_BYTES):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(params)
        size += row_size
    if chunk:
        chunks.append(chunk)
    return chunks


def _estimated_bytes(params: tuple[Any, ...]) -> int:
    """Rough serialised size of bind values: strings by length, the rest 8 B."""
    total = 0
    for value in params:
        if isinstance(value, str):
            total += len(value) + 4
        elif isinstance(value, list):
            total += sum(len(item) + 4 for item in value) + 4
        else:
            total += 8
    return total


def write_rows(
    session: Session,
    statement: Any,
    rows: Sequence[tuple[Hashable, tuple[Any, ...]]],
    what: str,
) -> int:
    """Write every row; return once all are acknowledged (the number of batches).

    Raises ``InfrastructureError`` if any batch failed; the caller repeats all.
    """
    return write_batches(session, batches_of(statement, rows), what)


def write_batches(
    session: Session, batches: Sequence[BatchStatement], what: str
) -> int:
    """Run batches concurrently; return once all are acknowledged (their number)."""
    if not batches:
        return 0
    try:
        execute_concurrent(
            session,
            [(batch, None) for batch in batches],
            concurrency=BATCH_CONCURRENCY,
            raise_on_first_error=True,
        )
    except CASSANDRA_ERRORS as exc:
        raise infrastructure_error(f"write {what} rows", exc) from exc
    return len(batches)
