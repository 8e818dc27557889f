"""One worker's batch cycle: fold, save until stored, commit, and keep polling.

Transient failures never end the process. A failed save is repeated, with the same
changes and more, after a jittered exponential backoff (0.2 s to 5 s); meanwhile
the assigned partitions are paused and the consumer is still polled, so the worker
keeps its group membership. Consume and commit errors are retried the same way.
Each outage logs one WARNING, and its end one INFO (``Health``).

When idle, the cycle checks once a second that each partition's position reached
its high watermark and, if so, saves that moment as the partition's
``caught_up_at``; reaching the end of a partition while busy (librdkafka's
partition EOF) counts the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaPartition

from commands.errors import CodecError, InfrastructureError
from projections.projector import Projector
from projections.retry import Backoff, Health

BATCH_MAX_RECORDS: Final = 1000
POLL_TIMEOUT_SECONDS: Final = 0.1
HEARTBEAT_SECONDS: Final = 1.0
"""How often an idle worker checks it is still at the end of the log."""
WATERMARK_TIMEOUT_SECONDS: Final = 1.0


class BatchCycle:
    """Folds batches into a projector and stores them, retrying what fails."""

    def __init__(
        self,
        projector: Projector,
        topic: str,
        stopping: threading.Event,
        health: tuple[Health, Health] | None = None,
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.projector = projector
        self.cassandra, self.kafka = health or (Health("cassandra"), Health("kafka"))
        self._topic = topic
        self._stopping = stopping
        self._clock = clock
        self._store_backoff = backoff()
        self._kafka_backoff = backoff()
        self._uncommitted: dict[int, int] = {}
        self.stored_offsets: dict[int, int] = {}
        """Next offset per partition as last saved with its rows (for watchers)."""
        self._commit_due = 0.0
        self._last_heartbeat = 0.0

    def process(self, consumer: Consumer, records: Sequence[Message]) -> None:
        """Fold a batch, then save until stored, then commit the offsets."""
        self.fold_batch(records)
        self.save_until_stored(consumer)
        self.commit(consumer)

    def forget(self, partitions: Sequence[int]) -> None:
        """Drop unsaved changes and uncommitted offsets of revoked partitions."""
        self.projector.forget(partitions)
        for partition in partitions:
            self._uncommitted.pop(partition, None)
            self.stored_offsets.pop(partition, None)

    def consume(self, consumer: Consumer, timeout_seconds: float) -> list[Message]:
        """One consume call; an exception counts as a Kafka failure, then a wait."""
        try:
            return consumer.consume(BATCH_MAX_RECORDS, timeout_seconds)
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError) and exc.args[0].fatal():
                raise InfrastructureError(f"Kafka consumer failed: {exc}") from exc
            self.kafka.failed("consume", exc)
            self._stopping.wait(self._kafka_backoff.next_delay())
            return []

    def fold_batch(self, records: Sequence[Message]) -> None:
        """Fold data records and end-of-partition marks; note consume errors."""
        at_ms = int(self._clock() * 1000)
        healthy = True
        for record in records:
            error = record.error()
            partition, offset = record.partition(), record.offset()
            if error is None and partition is not None and offset is not None:
                self.projector.fold(partition, offset, record)
            elif error is not None and error.code() == KafkaError._PARTITION_EOF:
                if partition is not None and offset is not None:
                    self.projector.caught_up(partition, offset, at_ms)
            elif error is not None:
                if error.fatal():
                    raise InfrastructureError(f"Kafka consumer failed: {error}")
                self.kafka.failed("consume", KafkaException(error))
                healthy = False
        if healthy and records:
            self.kafka.succeeded()

    def save_until_stored(self, consumer: Consumer) -> None:
        """Save pending changes; on failure pause, keep polling, and try again."""
        paused = False
        while self.projector.has_unsaved and not self._stopping.is_set():
            try:
                saved = self.projector.save()
            except CodecError:
                raise
            except InfrastructureError as exc:
                self.cassandra.failed("write read models", exc)
                if not paused:
                    consumer.pause(consumer.assignment())
                    paused = True
                self.wait(consumer, self._store_backoff.next_delay())
                continue
            self.cassandra.succeeded()
            self._store_backoff.reset()
            self._uncommitted.update(saved)
            self.stored_offsets.update(saved)
        if paused:
            consumer.resume(consumer.assignment())

    def wait(self, consumer: Consumer, seconds: float) -> None:
        """Wait while polling the (paused) consumer, so the group keeps us."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            records = self.consume(consumer, min(remaining, POLL_TIMEOUT_SECONDS))
            if records:
                self.fold_batch(records)

    def heartbeat(self, consumer: Consumer, partitions: set[int]) -> None:
        """When idle, check each partition is at the end of the log; save if so."""
        now = time.monotonic()
        if self.projector.has_unsaved or now - self._last_heartbeat < HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = now
        at_ms = int(self._clock() * 1000)
        for partition in sorted(partitions):
            tp = KafkaPartition(self._topic, partition)
            try:
                position = consumer.position([tp])[0].offset
                _, high = consumer.get_watermark_offsets(
                    tp, timeout=WATERMARK_TIMEOUT_SECONDS, cached=False
                )
            except KafkaException as exc:
                self.kafka.failed("read watermarks", exc)
                return
            if 0 <= high <= position:
                self.projector.caught_up(partition, position, at_ms)
        self.kafka.succeeded()
        self.save_until_stored(consumer)

    def commit(self, consumer: Consumer) -> None:
        """Commit saved offsets to Kafka for lag tools; retried with backoff."""
        if not self._uncommitted or time.monotonic() < self._commit_due:
            return
        offsets = [
            KafkaPartition(self._topic, p, o) for p, o in self._uncommitted.items()
        ]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self.kafka.failed("commit offsets", exc)
            self._commit_due = time.monotonic() + self._kafka_backoff.next_delay()
            return
        self._uncommitted.clear()
        self._kafka_backoff.reset()
        self.kafka.succeeded()
