"""Every read model is a fold of the log: replays, redeliveries, crashes change nothing.

The projector runs over encoded records into a store that merges writes the way
Cassandra does (newest ``USING TIMESTAMP`` per cell), so these properties hold for
the rows the real tables would hold.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from commands.errors import InfrastructureError
from projections.holds import HoldView
from projections.orders import OrderView
from projections.projector import Projector, WorkerCounts
from projections.seats import SeatView
from tests.fakes.cassandra_like import CassandraLikeStore
from tests.fakes.log_records import EncodedRecord, encoded
from tests.fakes.sale_log import sale_log

PARTITIONS = 4
TABLES = ("availability", "holds", "seats", "orders", "buyer_orders")

logs = st.builds(
    lambda seed, steps: encoded(sale_log(seed, steps), PARTITIONS),
    st.integers(0, 2**32),
    st.integers(0, 120),
)


def project(
    records: Sequence[EncodedRecord],
    store: CassandraLikeStore | None = None,
    batch_size: int = 50,
) -> CassandraLikeStore:
    """Fold records in batches the way the worker does, resuming from the store."""
    store = store or CassandraLikeStore()
    projector = Projector(store, WorkerCounts())
    saved = projector.restore(range(PARTITIONS))
    pending = [r for r in records if r.offset >= saved.get(r.partition, 0)]
    for start in range(0, len(pending), batch_size):
        for record in pending[start : start + batch_size]:
            projector.fold(record.partition, record.offset, record)
        projector.save()
    return store


def tables(store: CassandraLikeStore) -> dict[str, list[dict[str, Any]]]:
    return {table: store.rows(table) for table in TABLES}


def rewound(store: CassandraLikeStore) -> CassandraLikeStore:
    """The store with every partition's progress set back to offset zero."""
    store.progress = {}
    return store


@given(logs, st.data())
def test_rows_are_the_same_when_a_prefix_is_replayed_twice(
    records: list[EncodedRecord], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(records)))
    once = project(records[:cut])

    twice = project(records[:cut], rewound(project(records[:cut])))

    assert tables(twice) == tables(once)


@given(logs, st.data())
def test_rows_are_the_same_when_the_log_is_replayed_after_a_prefix(
    records: list[EncodedRecord], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(records)))
    batch = data.draw(st.integers(1, 40))

    replayed = project(records, rewound(project(records[:cut], batch_size=batch)))

    assert tables(replayed) == tables(project(records))


class CrashingStore(CassandraLikeStore):
    """Dies (raises) at its ``crash_after``-th row write, like a killed worker.

    The rows written before stay written, as a killed worker's would.
    """

    def __init__(self, crash_after: int) -> None:
        super().__init__()
        self.crash_after = crash_after

    def _write(self, table: str, key: Hashable, *args: Any, **kwargs: Any) -> None:
        if self.writes >= self.crash_after:
            raise InfrastructureError("killed mid-batch")
        super()._write(table, key, *args, **kwargs)


@given(logs, st.integers(0, 400), st.integers(1, 40))
def test_rows_are_the_same_when_the_worker_dies_mid_batch_and_restarts(
    records: list[EncodedRecord], crash_after: int, batch: int
) -> None:
    crashing = CrashingStore(crash_after)
    try:
        project(records, crashing, batch_size=batch)
    except InfrastructureError:
        pass

    restarted = CassandraLikeStore()
    restarted.tables, restarted.progress = crashing.tables, crashing.progress
    project(records, restarted)

    assert tables(restarted) == tables(project(records))


@given(logs, st.randoms(use_true_random=False))
def test_rows_are_the_same_when_writes_arrive_in_any_order(
    records: list[EncodedRecord], rng: random.Random
) -> None:
    recorder = RecordingStore()
    project(records, recorder, batch_size=7)
    project(records, rewound(recorder), batch_size=3)  # redelivered, other batches

    shuffled = CassandraLikeStore()
    writes = list(recorder.calls)
    rng.shuffle(writes)
    for method, rows in writes:
        getattr(shuffled, method)(rows)

    assert tables(shuffled) == tables(project(records))


class RecordingStore(CassandraLikeStore):
    """Keeps every save call with its rows, to play them back in another order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[Hashable]]] = []

    def save_rows(self, rows: Iterable[Any]) -> None:
        rows = [_copy(row) for row in rows]  # availability rows are mutable
        self.calls.append(("save_rows", rows))
        super().save_rows(rows)

    def save_holds(self, changes: Iterable[HoldView]) -> None:
        changes = list(changes)
        self.calls.append(("save_holds", changes))
        super().save_holds(changes)

    def save_seats(self, changes: Iterable[SeatView]) -> None:
        changes = list(changes)
        self.calls.append(("save_seats", changes))
        super().save_seats(changes)

    def save_orders(self, orders: Iterable[OrderView]) -> None:
        orders = list(orders)
        self.calls.append(("save_orders", orders))
        super().save_orders(orders)


def _copy(row: Any) -> Any:
    return dataclasses.replace(row)
