"""The worker's blocking Cassandra adapter: availability rows and saved offsets.

Every write carries ``USING TIMESTAMP`` derived from its log position, so of two
writes of one row the later position wins in Cassandra whatever order they arrive
in; a late, older write can never undo a newer one. Such timestamps are tiny next to
wall-clock ones, so nothing else may write or delete availability rows: a rebuild
goes into a fresh keyspace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from projections.availability import SectionAvailability
from projections.reader import (
    AVAILABILITY_COLUMNS,
    CASSANDRA_ERRORS,
    infrastructure_error,
    row_from_cql,
)
from projections.schema import checked_keyspace

WRITE_CONCURRENCY: Final = 64
INDEX_BITS: Final = 20
"""Low bits of a write timestamp that hold the event's index in its record."""


def write_timestamp(offset: int, index: int) -> int:
    """A Cassandra write timestamp that orders writes like log positions do."""
    return (offset << INDEX_BITS) | min(index, (1 << INDEX_BITS) - 1)


class AvailabilityStore:
    """Loads and saves availability rows and per-partition next offsets."""

    def __init__(
        self, session: Session, keyspace: str, projection: str = "availability"
    ) -> None:
        ks = checked_keyspace(keyspace)
        self._session = session
        self._projection = projection
        self._select_rows = (
            f"SELECT {AVAILABILITY_COLUMNS} FROM {ks}.availability_by_show"
        )
        self._upsert_row = session.prepare(
            f"INSERT INTO {ks}.availability_by_show ({AVAILABILITY_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._select_offsets = session.prepare(
            f"SELECT partition, next_offset FROM {ks}.projection_offsets "
            "WHERE projection = ?"
        )
        self._upsert_offset = session.prepare(
            f"INSERT INTO {ks}.projection_offsets (projection, partition, next_offset)"
            " VALUES (?, ?, ?)"
        )

    def load_rows(self, partitions: Iterable[int]) -> list[SectionAvailability]:
        """Stored rows last written from one of these Kafka partitions."""
        # A full scan: availability is small (shows x sections), and a row's
        # partition is not part of its key.
        wanted = set(partitions)
        try:
            result = self._session.execute(self._select_rows)
            rows = [row_from_cql(row) for row in result]
        except CASSANDRA_ERRORS as exc:
            raise infrastructure_error("load availability rows", exc) from exc
        return [row for row in rows if row.log_partition in wanted]

    def save_rows(self, rows: Iterable[SectionAvailability]) -> None:
        """Write rows concurrently; returns once every write is acknowledged."""
        params = [_row_params(row) for row in rows]
        if not params:
            return
        try:
            execute_concurrent_with_args(
                self._session,
                self._upsert_row,
                params,
                concurrency=WRITE_CONCURRENCY,
                raise_on_first_error=True,
            )
        except CASSANDRA_ERRORS as exc:
            raise infrastructure_error("write availability rows", exc) from exc

    def load_offsets(self) -> dict[int, int]:
        """Next offset to fold per partition, as last saved."""
        try:
            result = self._session.execute(self._select_offsets, (self._projection,))
            return {row.partition: row.next_offset for row in result}
        except CASSANDRA_ERRORS as exc:
            raise infrastructure_error("load projection offsets", exc) from exc

    def save_offsets(self, next_offsets: Mapping[int, int]) -> None:
        """Save the next offset to fold per partition; lower ones rewind (replay)."""
        # Plain timestamps here, unlike rows: an offset that goes back only replays
        # records the rows already hold, and it is how an operator rewinds.
        params = [(self._projection, p, o) for p, o in next_offsets.items()]
        try:
            execute_concurrent_with_args(
                self._session,
                self._upsert_offset,
                params,
                concurrency=WRITE_CONCURRENCY,
                raise_on_first_error=True,
            )
        except CASSANDRA_ERRORS as exc:
            raise infrastructure_error("save projection offsets", exc) from exc


def _row_params(row: SectionAvailability) -> tuple[object, ...]:
    """Bind values of one row, its write timestamp last."""
    return (
        row.show_id,
        row.section_id,
        row.kind.value,
        row.capacity,
        row.held,
        row.sold,
        row.free,
        row.hold_ttl_seconds,
        row.log_partition,
        row.log_offset,
        row.log_index,
        row.updated_at_ms,
        write_timestamp(row.log_offset, row.log_index),
    )
