"""The worker's blocking Cassandra adapter: rows, hold changes and progress.

Every row write carries ``USING TIMESTAMP`` derived from its log position, so of
two writes of one row the later position wins in Cassandra whatever order they
arrive in, column by column; a late, older write can never undo a newer one. Such
timestamps are tiny next to wall-clock ones, so nothing else may write or delete
rows of the read-model tables: a rebuild goes into a fresh keyspace
(``ticketing replay``).

Rows go out in unlogged batches grouped by partition (``projections.batch_writes``);
progress rows, a handful per save, one request each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import UNSET_VALUE

from infra.settings import Settings
from projections.availability import SectionAvailability
from projections.batch_writes import batches_of, write_batches
from projections.cql import connect, epoch_ms
from projections.hold_reader import HOLD_COLUMNS
from projections.holds import HoldView
from projections.orders import OrderView
from projections.reader import (
    AVAILABILITY_COLUMNS,
    CASSANDRA_ERRORS,
    PROJECTION,
    infrastructure_error,
    row_from_cql,
)
from projections.schema import check_replayable, checked_keyspace, ensure_schema
from projections.seats import SeatView

WRITE_CONCURRENCY: Final = 64
INDEX_BITS: Final = 20
"""Low bits of a write timestamp that hold the event's index in its record."""


def write_timestamp(offset: int, index: int) -> int:
    """A Cassandra write timestamp that orders writes like log positions do."""
    return (offset << INDEX_BITS) | min(index, (1 << INDEX_BITS) - 1)


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far the worker got in one Kafka partition.

    ``next_offset`` is the next offset to fold; ``caught_up_at_ms`` the wall time
    (ms since the epoch) at which it last had folded and stored every record the
    partition held, None if it never had.
    """

    next_offset: int
    caught_up_at_ms: int | None = None


class AvailabilityStore:
    """Loads and saves availability rows, hold changes and per-partition progress."""

    def __init__(
        self, session: Session, keyspace: str, projection: str = PROJECTION
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
        self._upsert_hold = session.prepare(
            f"INSERT INTO {ks}.holds_by_id ({HOLD_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        # One statement sets every seat an event changed the same way.
        self._update_seats = session.prepare(
            f"UPDATE {ks}.seats_by_section USING TIMESTAMP ? SET status = ?, "
            "hold_id = ?, order_id = ?, log_partition = ?, log_offset = ?, "
            "log_index = ?, updated_at = ? "
            "WHERE show_id = ? AND section_id = ? AND seat_id IN ?"
        )
        self._upsert_order = session.prepare(
            f"INSERT INTO {ks}.orders_by_id ({ORDER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._upsert_buyer_order = session.prepare(
            f"INSERT INTO {ks}.orders_by_buyer ({ORDER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._select_progress = session.prepare(
            f"SELECT partition, next_offset, caught_up_at FROM {ks}.projection_offsets"
            " WHERE projection = ?"
        )
        self._upsert_progress = session.prepare(
            f"INSERT INTO {ks}.projection_offsets "
            "(projection, partition, next_offset, caught_up_at, saved_at)"
            " VALUES (?, ?, ?, ?, toTimestamp(now()))"
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
        self.save_all(rows, (), (), ())

    def save_holds(self, changes: Iterable[HoldView]) -> None:
        """Write hold changes, leaving alone the columns a change does not say."""
        self.save_all((), changes, (), ())

    def save_seats(self, changes: Iterable[SeatView]) -> None:
        """Write seat rows, batched by section (one Cassandra partition)."""
        self.save_all((), (), changes, ())

    def save_orders(self, orders: Iterable[OrderView]) -> None:
        """Write each order by id and by buyer."""
        self.save_all((), (), (), orders)

    def save_all(
        self,
        rows: Iterable[SectionAvailability],
        holds: Iterable[HoldView],
        seats: Iterable[SeatView],
        orders: Iterable[OrderView],
    ) -> None:
        """Write the changes of every table at once; return when all are stored.

        One round of concurrent batches, not one per table: a save waits for
        its slowest batch once.
        """
        orders = list(orders)
        order_params = [_order_params(o) for o in orders]
        batches = [
            *batches_of(self._upsert_row, [(r.show_id, _row_params(r)) for r in rows]),
            *batches_of(
                self._upsert_hold, [(c.hold_id, _hold_params(c)) for c in holds]
            ),
            *batches_of(self._update_seats, _seat_updates(seats)),
            *batches_of(
                self._upsert_order,
                [(o.order_id, p) for o, p in zip(orders, order_params, strict=True)],
            ),
            *batches_of(
                self._upsert_buyer_order,
                [(o.buyer_id, p) for o, p in zip(orders, order_params, strict=True)],
            ),
        ]
        write_batches(self._session, batches, "read-model")

    def load_progress(self) -> dict[int, PartitionProgress]:
        """Progress per partition, as last saved."""
        try:
            result = self._session.execute(self._select_progress, (self._projection,))
            return {
                row.partition: PartitionProgress(
                    row.next_offset, epoch_ms(row.caught_up_at)
                )
                for row in result
            }
        except CASSANDRA_ERRORS as exc:
            raise infrastructure_error("load projection offsets", exc) from exc

    def load_offsets(self) -> dict[int, int]:
        """Next offset to fold per partition, as last saved."""
        return {p: g.next_offset for p, g in self.load_progress().items()}

    def save_progress(self, progress: Mapping[int, PartitionProgress]) -> None:
        """Save progress per partition; a lower next offset rewinds (replay)."""
        # Plain timestamps here, unlike rows: an offset that goes back only replays
        # records the rows already hold, and it is how an operator rewinds.
        params = [
            (
                self._projection,
                partition,
                done.next_offset,
                UNSET_VALUE if done.caught_up_at_ms is None else done.caught_up_at_ms,
            )
            for partition, done in progress.items()
        ]
        self._write(self._upsert_progress, params, "projection offsets")

    def save_offsets(self, next_offsets: Mapping[int, int]) -> None:
        """Save the next offset to fold per partition; lower ones rewind (replay)."""
        self.save_progress({p: PartitionProgress(o) for p, o in next_offsets.items()})

    def _write(
        self, statement: Any, params: Sequence[tuple[Any, ...]], what: str
    ) -> None:
        """Run one statement per parameter tuple; return once all are acknowledged."""
        if not params:
            return
        try:
            execute_concurrent_with_args(
                self._session,
                statement,
                params,
                concurrency=WRITE_CONCURRENCY,
                raise_on_first_error=True,
            )
        except CASSANDRA_ERRORS as exc:
            raise infrastructure_error(f"write {what} rows", exc) from exc


def open_store(settings: Settings) -> tuple[Cluster, AvailabilityStore]:
    """Connect, create the tables if needed and prepare the worker's statements."""
    cluster, session = connect(settings)
    try:
        ensure_schema(session, settings.cassandra_keyspace, settings)
        check_replayable(session, settings.cassandra_keyspace)
        return cluster, AvailabilityStore(session, settings.cassandra_keyspace)
    except CASSANDRA_ERRORS as exc:
        cluster.shutdown()
        raise infrastructure_error("prepare the read models", exc) from exc
    except BaseException:
        cluster.shutdown()
        raise


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


SEAT_COLUMNS: Final = (
    "show_id, section_id, seat_id, status, hold_id, order_id, "
    "log_partition, log_offset, log_index, updated_at"
)
ORDER_COLUMNS: Final = (
    "buyer_id, order_id, hold_id, show_id, section_id, seat_ids, quantity, "
    "ticket_ids, sold_at, log_partition, log_offset, log_index"
)


def _seat_updates(
    changes: Iterable[SeatView],
) -> list[tuple[tuple[str, str], tuple[object, ...]]]:
    """Bind values of seat updates: one per section and identical change.

    Seats changed by one event (same position, status, hold and order) share an
    update with ``seat_id IN ?``; the timestamp comes first in an UPDATE.
    """
    groups: dict[tuple[object, ...], list[str]] = {}
    for c in changes:
        same = (
            write_timestamp(c.log_offset, c.log_index),
            c.status.value,
            c.hold_id,
            c.order_id,
            c.log_partition,
            c.log_offset,
            c.log_index,
            c.updated_at_ms,
            c.show_id,
            c.section_id,
        )
        groups.setdefault(same, []).append(c.seat_id)
    return [
        ((str(same[8]), str(same[9])), (*same, seat_ids))
        for same, seat_ids in groups.items()
    ]


def _order_params(order: OrderView) -> tuple[object, ...]:
    """Bind values of one order (both tables), its write timestamp last."""
    return (
        order.buyer_id,
        order.order_id,
        order.hold_id,
        order.show_id,
        order.section_id,
        list(order.seat_ids),
        order.quantity,
        list(order.ticket_ids),
        order.sold_at_ms,
        order.log_partition,
        order.log_offset,
        order.log_index,
        write_timestamp(order.log_offset, order.log_index),
    )


def _hold_params(change: HoldView) -> tuple[object, ...]:
    """Bind values of one hold change, unset where it says nothing, timestamp last."""

    def said(value: object) -> object:
        return UNSET_VALUE if value is None else value

    seat_ids = None if change.seat_ids is None else list(change.seat_ids)
    return (
        change.hold_id,
        change.show_id,
        change.section_id,
        said(change.buyer_id),
        change.status.value,
        said(seat_ids),
        said(change.quantity),
        said(change.expires_at_ms),
        said(change.reason),
        change.log_partition,
        change.log_offset,
        change.log_index,
        change.updated_at_ms,
        write_timestamp(change.log_offset, change.log_index),
    )
