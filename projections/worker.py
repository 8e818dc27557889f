"""The projection worker: folds the event log into the read models.

Delivery is at least once and the receiver is idempotent. Each batch of records is
folded (``Projector``), then the changed availability rows and hold changes are
written to Cassandra, then each partition's next offset and caught-up time are
saved in ``projection_offsets``, then the offsets are committed to Kafka. A crash
between two steps replays records whose positions the rows already hold. The
offsets saved in Cassandra are the ones the worker resumes from; those committed
to Kafka only let the usual tools show the group's lag.

Transient failures (Cassandra, Kafka) never end the process: ``BatchCycle`` and
``_retry`` wait with backoff and try again. Only a stop request, a fatal Kafka
error or a programming error ends ``run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Final, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
)
from confluent_kafka import TopicPartition as KafkaPartition

from commands.errors import CodecError, InfrastructureError
from infra.settings import Settings
from infra.topics import events_topic
from projections.batches import POLL_TIMEOUT_SECONDS, BatchCycle
from projections.projector import ProjectionStore, Projector, WorkerCounts
from projections.retry import Backoff, Health
from projections.store import open_store

__all__ = ["ProjectionWorker", "WorkerCounts", "main"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

REJOIN_SECONDS: Final = 20.0
"""How long a consumer that lost its assignment may take to get one again.

After a broker restart librdkafka can keep a consumer whose coordinator
connection never comes back: its session times out, it revokes the lost
partitions and then never rejoins (requests to the coordinator time out in the
queue). The worker then replaces the consumer with a new one.
"""


class ProjectionWorker:
    """Consumes the events topic and keeps the read models up to date.

    ``store`` replaces the Cassandra store (tests); ``run`` then still connects.
    """

    def __init__(
        self,
        settings: Settings,
        store: ProjectionStore | None = None,
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._topic = events_topic(settings)
        self._stopping = threading.Event()
        self._assigned: set[int] = set()
        self._consumer: Consumer | None = None
        self._lost_at: float | None = None
        """When the assignment was lost (session timed out), until one comes back."""
        self.consumers_replaced = 0
        self._backoff = backoff
        self._clock = clock
        self._startup_backoff = backoff()
        self.cassandra = Health("cassandra")
        self.kafka = Health("kafka")
        self.counts = WorkerCounts()
        self.cycle: BatchCycle | None = None
        if store is not None:
            self._attach(store)

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand; safe from any thread."""
        self._stopping.set()

    def run(
        self,
        stop_after_idle_seconds: float | None = None,
        max_seconds: float | None = None,
    ) -> WorkerCounts:
        """Consume and fold until stopped, idle once assigned, or out of time."""
        opened = self._retry(lambda: open_store(self._settings), "connect")
        if opened is None:
            return self.counts
        cluster, store = opened
        if self.cycle is None:
            self._attach(store)
        try:
            self._open_consumer()
            logger.info("projection worker started", extra={"topic": self._topic})
            self._loop(stop_after_idle_seconds, max_seconds)
        finally:
            if self._consumer is not None:
                self._consumer.close()
            cluster.shutdown()
            logger.info("projection worker stopped", extra=asdict(self.counts))
        return self.counts

    def lag(self) -> dict[int, int]:
        """Records not yet folded per assigned partition, from cached watermarks."""
        consumer = self._consumer
        if consumer is None:
            return {}
        partitions = [KafkaPartition(self._topic, p) for p in sorted(self._assigned)]
        try:
            lags = {}
            for tp in consumer.position(partitions):
                _, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0 and tp.offset >= 0:
                    lags[tp.partition] = max(high - tp.offset, 0)
        except (KafkaException, RuntimeError):  # RuntimeError: consumer closed
            return {}
        return lags

    def _attach(self, store: ProjectionStore) -> None:
        """Fold into this store from now on."""
        projector = Projector(store, self.counts)
        self.cycle = BatchCycle(
            projector,
            self._topic,
            self._stopping,
            (self.cassandra, self.kafka),
            self._backoff,
            self._clock,
        )

    def _consumer_config(self) -> dict[str, object]:
        """Consumer settings: read committed, commit by hand, start at the start."""
        return {
            "bootstrap.servers": self._settings.kafka_bootstrap,
            "group.id": self._settings.projection_group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "error_cb": self._on_client_error,
        }

    def _open_consumer(self) -> Consumer:
        """A new consumer of the events topic, subscribed in the group."""
        consumer = self._consumer = self._new_consumer(self._consumer_config())
        consumer.subscribe(
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        return consumer

    def _new_consumer(self, config: dict[str, object]) -> Consumer:
        return Consumer(config)

    def replace_stuck_consumer(self, now: float) -> bool:
        """Open a new consumer if the lost assignment has not come back in time.

        The old consumer is closed on a thread of its own: a consumer whose
        coordinator is gone may block in ``close``. Its callbacks are ignored
        from now on (they name a consumer that is no longer ours).
        """
        if self._assigned or self._lost_at is None:
            return False
        if now - self._lost_at < REJOIN_SECONDS:
            return False
        old = self._consumer
        logger.warning(
            "consumer lost its partitions and did not rejoin; opening a new one",
            extra={"seconds": round(now - self._lost_at, 1)},
        )
        self._lost_at = now  # a new consumer gets REJOIN_SECONDS of its own
        self._open_consumer()
        self.consumers_replaced += 1
        if old is not None:
            # TODO(limit): a close that never returns leaves its thread and
            # client behind until the process exits; once per broker outage.
            threading.Thread(
                target=_close_quietly, args=(old,), name="consumer-close", daemon=True
            ).start()
        return True

    def _loop(self, idle_seconds: float | None, max_seconds: float | None) -> None:
        """Consume batches until a stop condition holds."""
        started = last_record = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            self.replace_stuck_consumer(now)
            consumer = self._consumer
            assert consumer is not None
            if max_seconds is not None and now - started >= max_seconds:
                return
            if not self._assigned:
                last_record = now
            elif idle_seconds is not None and now - last_record >= idle_seconds:
                return
            assert self.cycle is not None
            records = self.cycle.consume(consumer, POLL_TIMEOUT_SECONDS)
            if records:
                began = time.monotonic()
                self.cycle.process(consumer, records)
                self.counts.busy_seconds += time.monotonic() - began
            if any(record.error() is None for record in records):
                last_record = time.monotonic()  # idle counts from the batch's end
            else:
                self.cycle.heartbeat(consumer, self._assigned)
            self.cycle.commit(consumer)

    def _retry(self, action: Callable[[], T], what: str) -> T | None:
        """Call until it works (Cassandra failures wait and retry); None if stopped."""
        while not self._stopping.is_set():
            try:
                result = action()
            except CodecError:
                raise
            except InfrastructureError as exc:
                self.cassandra.failed(what, exc)
                self._stopping.wait(self._startup_backoff.next_delay())
                continue
            self.cassandra.succeeded()
            self._startup_backoff.reset()
            return result
        return None

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        """Load rows and progress of new partitions, then start from there."""
        if consumer is not self._consumer:
            return
        self._lost_at = None
        assert self.cycle is not None
        projector = self.cycle.projector
        numbers = [tp.partition for tp in partitions]
        saved = self._retry(lambda: projector.restore(numbers), "load rows")
        if saved is None:  # stopping
            return
        for tp in partitions:
            tp.offset = saved.get(tp.partition, OFFSET_BEGINNING)
        consumer.assign(partitions)
        self._assigned.update(numbers)
        logger.info("partitions assigned", extra={"partitions": numbers})

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        """Forget the partitions another worker now owns, even unsaved changes."""
        if consumer is not self._consumer:
            return
        assert self.cycle is not None
        numbers = [tp.partition for tp in partitions]
        self.cycle.forget(numbers)
        self._assigned.difference_update(numbers)
        logger.info("partitions revoked", extra={"partitions": numbers})

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        """The session timed out: forget the partitions, expect them back soon."""
        if consumer is not self._consumer:
            return
        self._on_revoke(consumer, partitions)
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        logger.warning(
            "partitions lost", extra={"partitions": [tp.partition for tp in partitions]}
        )

    def _on_client_error(self, error: KafkaError) -> None:
        """Client-wide errors (brokers down); a fatal one stops the worker."""
        if error.fatal():
            logger.error("Kafka client failed", extra={"error": str(error)})
            self.stop()
        else:
            self.kafka.failed("reach brokers", KafkaException(error))


def _close_quietly(consumer: Consumer) -> None:
    """Close a replaced consumer; its errors no longer matter."""
    try:
        consumer.close()
    except (KafkaException, RuntimeError) as exc:
        logger.info("replaced consumer closed with an error", extra={"error": str(exc)})


def main(settings: Settings) -> int:
    """Run the worker in the live keyspace until SIGTERM or SIGINT (see live_worker)."""
    from projections.live_worker import run_live

    return run_live(settings)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main(Settings.from_env()))
