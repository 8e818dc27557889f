"""The worker's batch cycle against a fake store: retries, offsets, unknown events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from commands.errors import InfrastructureError
from commands.model import (
    CheckoutStarted,
    CommandRejected,
    Event,
    HoldPlaced,
    RejectionReason,
    SaleOpened,
    SectionCreated,
    SectionKind,
    TicketsSold,
)
from infra.settings import Settings
from projections.availability import SectionAvailability
from projections.holds import HoldStatus, HoldView, merge_change
from projections.orders import OrderView
from projections.retry import Backoff
from projections.seats import SeatView
from projections.store import PartitionProgress
from projections.worker import REJOIN_SECONDS, ProjectionWorker
from schemas.codec import encode_events, event_headers

GA = SectionKind.GENERAL_ADMISSION


class FakeStore:
    """A store behind ``ProjectionStore`` whose saves fail ``failures`` times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.rows: dict[tuple[str, str], SectionAvailability] = {}
        self.holds: dict[str, HoldView] = {}
        self.seats: dict[tuple[str, str, str], SeatView] = {}
        self.orders: dict[str, OrderView] = {}
        self.progress: dict[int, PartitionProgress] = {}
        self.attempts = 0

    def load_rows(self, partitions: Iterable[int]) -> list[SectionAvailability]:
        wanted = set(partitions)
        return [r for r in self.rows.values() if r.log_partition in wanted]

    def load_progress(self) -> dict[int, PartitionProgress]:
        return dict(self.progress)

    def save_rows(self, rows: Iterable[SectionAvailability]) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise InfrastructureError("Cassandra could not write availability rows")
        self.rows.update({row.key: row for row in rows})

    def save_holds(self, changes: Iterable[HoldView]) -> None:
        for change in changes:
            self.holds[change.hold_id] = merge_change(
                self.holds.get(change.hold_id), change
            )

    def save_seats(self, changes: Iterable[SeatView]) -> None:
        self.seats.update({change.key: change for change in changes})

    def save_orders(self, orders: Iterable[OrderView]) -> None:
        self.orders.update({order.order_id: order for order in orders})

    def save_all(
        self,
        rows: Iterable[SectionAvailability],
        holds: Iterable[HoldView],
        seats: Iterable[SeatView],
        orders: Iterable[OrderView],
    ) -> None:
        self.save_rows(rows)
        self.save_holds(holds)
        self.save_seats(seats)
        self.save_orders(orders)

    def save_progress(self, progress: Mapping[int, PartitionProgress]) -> None:
        self.progress.update(progress)


class FakeRecord:
    """A consumed record as the worker reads it."""

    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._at = (partition, offset)
        self._value = value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._at[0]

    def offset(self) -> int:
        return self._at[1]

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return event_headers()

    def topic(self) -> str:
        return "events"


class FakeConsumer:
    """Records the calls the cycle makes; delivers nothing while it waits."""

    def __init__(self) -> None:
        self.commits: list[list[tuple[int, int]]] = []
        self.paused = 0
        self.resumed = 0

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("events", 0)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused += 1

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.resumed += 1

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])


def quick_backoff() -> Backoff:
    return Backoff(initial_seconds=0.001, max_seconds=0.004)


def records(*batches: Sequence[Event]) -> list[Message]:
    fakes = [FakeRecord(0, n, encode_events(list(b))) for n, b in enumerate(batches)]
    return cast(list[Message], fakes)


SALE = records(
    [SectionCreated("c1", 1, "s1", "A", GA, 10, 600)],
    [HoldPlaced("h1", 2, "h1", "s1", "A", "b1", (), 3, 602)],
    [HoldPlaced("h2", 3, "h2", "s1", "A", "b2", (), 2, 603)],
)


def worker_with(store: FakeStore) -> ProjectionWorker:
    return ProjectionWorker(Settings(), store=store, backoff=quick_backoff)


def test_rows_and_offsets_are_stored_once_when_the_store_fails_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore(failures=3)
    worker = worker_with(store)
    consumer = FakeConsumer()
    assert worker.cycle is not None

    with caplog.at_level(logging.INFO, logger="projections.retry"):
        worker.cycle.process(cast(Consumer, consumer), SALE)

    row = store.rows[("s1", "A")]
    assert (row.held, row.free, row.log_offset) == (5, 5, 2)
    assert store.progress[0].next_offset == 3
    assert store.attempts == 4
    assert consumer.commits == [[(0, 3)]]
    assert (consumer.paused, consumer.resumed) == (1, 1)
    levels = [r.levelname for r in caplog.records if r.name == "projections.retry"]
    assert levels == ["WARNING", "INFO"]
    assert worker.counts.saves_failed == 3


def test_nothing_is_committed_when_the_store_keeps_failing_until_stopped() -> None:
    store = FakeStore(failures=1_000_000)
    worker = worker_with(store)
    consumer = FakeConsumer()
    assert worker.cycle is not None
    worker.cycle.projector.fold(0, 0, cast(Message, SALE[0]))
    attempts_before_stop = 5

    original = store.save_rows

    def save_then_stop(rows: Iterable[SectionAvailability]) -> None:
        if store.attempts >= attempts_before_stop:
            worker.stop()
        original(rows)

    store.save_rows = save_then_stop  # type: ignore[method-assign]
    worker.cycle.save_until_stored(cast(Consumer, consumer))
    worker.cycle.commit(cast(Consumer, consumer))

    assert store.rows == {}
    assert store.progress == {}
    assert consumer.commits == []
    assert worker.cassandra.degraded


def test_unknown_and_new_event_types_fold_without_failing_when_in_a_batch() -> None:
    store = FakeStore()
    worker = worker_with(store)
    consumer = FakeConsumer()
    assert worker.cycle is not None
    reason = RejectionReason.INVALID_REQUEST
    batch = records(
        [SectionCreated("c1", 1, "s1", "A", GA, 10, 600)],
        [
            SaleOpened("c2", 2, "s1", "A"),
            HoldPlaced("h1", 3, "h1", "s1", "A", "b1", (), 4, 603),
            CommandRejected("c3", 4, "s1", "A", "Checkout", reason, "no"),
        ],
        [
            CheckoutStarted("c4", 5, "h1", "s1", "A", "b1", 905),
            TicketsSold("c5", 6, "h1", "o1", "s1", "A", "b1", (), 4, ("t1",)),
        ],
    )

    worker.cycle.process(cast(Consumer, consumer), batch)

    row = store.rows[("s1", "A")]
    assert (row.held, row.sold, row.free, row.updated_at_ms) == (0, 4, 6, 6)
    hold = store.holds["h1"]
    assert (hold.status, hold.buyer_id, hold.expires_at_ms) == (
        HoldStatus.SOLD,
        "b1",
        905,
    )
    assert consumer.commits == [[(0, 3)]]


class GroupConsumer:
    """A consumer in the group: records its subscription and its close."""

    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.closed = threading.Event()

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.subscribed = topics

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [tp.partition for tp in partitions]

    def close(self) -> None:
        self.closed.set()


class GroupWorker(ProjectionWorker):
    """A worker whose consumers are ``GroupConsumer``s."""

    def __init__(self) -> None:
        super().__init__(Settings(), store=FakeStore(), backoff=quick_backoff)
        self.opened: list[GroupConsumer] = []

    def _new_consumer(self, config: dict[str, object]) -> Consumer:
        self.opened.append(GroupConsumer())
        return cast(Consumer, self.opened[-1])


def test_a_consumer_that_lost_its_partitions_and_never_rejoins_is_replaced() -> None:
    worker = GroupWorker()
    first = worker._open_consumer()
    worker._assigned = {0, 1}
    worker._on_lost(first, [TopicPartition("events", 0), TopicPartition("events", 1)])
    assert worker._lost_at is not None
    lost_at = worker._lost_at

    assert not worker.replace_stuck_consumer(lost_at + REJOIN_SECONDS / 2)
    assert worker.replace_stuck_consumer(lost_at + REJOIN_SECONDS + 1)

    assert len(worker.opened) == 2
    assert worker._consumer is cast(Consumer, worker.opened[1])
    assert worker.opened[1].subscribed == [worker._topic]
    assert worker.opened[0].closed.wait(5), "the stuck consumer is closed"
    assert worker.consumers_replaced == 1
    # The replaced consumer's late callbacks change nothing.
    worker._assigned = {2}
    worker._on_revoke(first, [TopicPartition("events", 2)])
    worker._on_lost(first, [TopicPartition("events", 2)])
    assert worker._assigned == {2}


def test_a_consumer_without_partitions_it_never_lost_is_kept() -> None:
    worker = GroupWorker()
    first = worker._open_consumer()
    # An idle member (more workers than partitions) is not stuck.
    assert not worker.replace_stuck_consumer(1e9)
    # A lost assignment that comes back in time keeps the consumer.
    worker._assigned = {0}
    worker._on_lost(first, [TopicPartition("events", 0)])
    worker._on_assign(first, [TopicPartition("events", 0)])
    assert worker._assigned == {0}
    assert not worker.replace_stuck_consumer(1e9)
    assert len(worker.opened) == 1
    assert not worker.opened[0].closed.is_set()
