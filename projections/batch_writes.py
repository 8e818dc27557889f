"""Writing many rows at once: unlogged batches grouped by partition, concurrently.

One request per row costs the driver about as much CPU as Cassandra spends on the
write, and a worker that waited for each was held to a few thousand rows a
second. Rows are sorted by partition key and cut into unlogged batches of at
most ``ROWS_PER_BATCH``: the rows of one partition (the seats of a section) mostly
share a batch, which Cassandra applies as one mutation; rows of one-row
partitions (holds, orders) are packed together, which saves round trips. The
batches then run ``BATCH_CONCURRENCY`` at a time. Each statement keeps its own
``USING TIMESTAMP``, so batching changes no outcome, only the cost.

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
"""Statements per batch: small rows stay under Cassandra's 5 KiB batch warning."""
BATCH_CONCURRENCY: Final = 32

# TODO(limit): batches that pack several partitions go through one coordinator,
# which forwards each row to its replicas. On one node that is free; on a cluster
# of many nodes, group rows by token range (the driver's token map) when
# coordinator CPU shows in write latency.


def batches_of(
    statement: Any, rows: Sequence[tuple[Hashable, tuple[Any, ...]]]
) -> list[BatchStatement]:
    """Unlogged batches of ``(partition key, bind values)``, partitions together."""
    ordered = sorted(rows, key=lambda row: repr(row[0]))
    batches: list[BatchStatement] = []
    for start in range(0, len(ordered), ROWS_PER_BATCH):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for _, params in ordered[start : start + ROWS_PER_BATCH]:
            batch.add(statement, params)
        batches.append(batch)
    return batches


def write_rows(
    session: Session,
    statement: Any,
    rows: Sequence[tuple[Hashable, tuple[Any, ...]]],
    what: str,
) -> int:
    """Write every row; return once all are acknowledged (the number of batches).

    Raises ``InfrastructureError`` if any batch failed; the caller repeats all.
    """
    if not rows:
        return 0
    batches = batches_of(statement, rows)
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
