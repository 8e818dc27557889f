"""The projection worker: folds the event log into the availability read model.

Delivery is at least once and the receiver is idempotent. Each batch of records is
decoded and folded, then the changed rows are written to Cassandra, then the next
offset of each partition is saved in ``projection_offsets``, then committed to
Kafka. A crash between two steps replays records whose positions the rows already
hold, and the fold skips them. The offsets saved in Cassandra are the ones the
worker resumes from (a fresh keyspace starts from the beginning of the log); the
offsets committed to Kafka only let the usual tools show the group's lag.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Final, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaPartition

from commands.errors import CodecError, InfrastructureError
from infra.settings import Settings
from infra.topics import events_topic
from projections.availability import AvailabilityFold
from projections.reader import connect
from projections.schema import ensure_schema
from projections.store import AvailabilityStore
from schemas.codec import Headers, decode_events

logger = logging.getLogger(__name__)

BATCH_MAX_RECORDS: Final = 1000
POLL_TIMEOUT_SECONDS: Final = 0.1


@dataclass(slots=True)
class WorkerCounts:
    """What one run of the worker did; logged when it stops."""

    records: int = 0
    events_applied: int = 0
    events_skipped: int = 0
    undecodable_records: int = 0
    rows_written: int = 0
    busy_seconds: float = 0.0
    """Time spent decoding, folding and writing, without waiting for records."""


class ProjectionWorker:
    """Consumes the events topic and keeps ``availability_by_show`` up to date."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = events_topic(settings)
        self._fold = AvailabilityFold()
        self._stopping = threading.Event()
        self._assigned: set[int] = set()
        self._consumer: Consumer | None = None
        self._store: AvailabilityStore | None = None
        self.counts = WorkerCounts()

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand; safe from any thread."""
        self._stopping.set()

    def run(
        self,
        stop_after_idle_seconds: float | None = None,
        max_seconds: float | None = None,
    ) -> WorkerCounts:
        """Consume and fold until stopped, idle once assigned, or out of time."""
        cluster, session = connect(self._settings)
        consumer: Consumer | None = None
        try:
            ensure_schema(session, self._settings.cassandra_keyspace)
            self._store = AvailabilityStore(session, self._settings.cassandra_keyspace)
            consumer = self._consumer = Consumer(self._consumer_config())
            consumer.subscribe(
                [self._topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            logger.info("projection worker started", extra={"topic": self._topic})
            self._loop(consumer, stop_after_idle_seconds, max_seconds)
        finally:
            if consumer is not None:
                consumer.close()
            cluster.shutdown()
            logger.info("projection worker stopped", extra=asdict(self.counts))
        return self.counts

    def lag(self) -> dict[int, int]:
        """Records not yet folded per assigned partition, from cached watermarks.

        Call it from the thread that runs the worker. With transactions the high
        watermark counts commit markers too, so an idle partition may show 1.
        """
        consumer = self._consumer
        if consumer is None:
            return {}
        partitions = [KafkaPartition(self._topic, p) for p in sorted(self._assigned)]
        try:
            positions = consumer.position(partitions)
            lags = {}
            for tp in positions:
                _, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0 and tp.offset >= 0:
                    lags[tp.partition] = max(high - tp.offset, 0)
        except (KafkaException, RuntimeError):  # RuntimeError: consumer closed
            return {}
        return lags

    def _consumer_config(self) -> dict[str, object]:
        """Consumer settings: read committed, commit by hand, start at the start."""
        return {
            "bootstrap.servers": self._settings.kafka_bootstrap,
            "group.id": self._settings.projection_group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }

    def _loop(
        self, consumer: Consumer, idle_seconds: float | None, max_seconds: float | None
    ) -> None:
        """Consume batches until a stop condition holds."""
        started = last_record = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if max_seconds is not None and now - started >= max_seconds:
                return
            if not self._assigned:
                last_record = now
            elif idle_seconds is not None and now - last_record >= idle_seconds:
                return
            try:
                records = consumer.consume(BATCH_MAX_RECORDS, POLL_TIMEOUT_SECONDS)
            except KafkaException as exc:
                raise InfrastructureError(f"Kafka consumer failed: {exc}") from exc
            if records:
                last_record = time.monotonic()
                self._process(consumer, records)
                self.counts.busy_seconds += time.monotonic() - last_record

    def _process(self, consumer: Consumer, records: Sequence[Message]) -> None:
        """Fold a batch of records, then write rows, save offsets and commit."""
        next_offsets: dict[int, int] = {}
        for record in records:
            error = record.error()
            if error is not None:
                if error.fatal():
                    raise InfrastructureError(f"Kafka consumer failed: {error}")
                logger.warning("consume error", extra={"error": str(error)})
                continue
            partition, offset = record.partition(), record.offset()
            if partition is None or offset is None:  # only errors lack a position
                continue
            next_offsets[partition] = offset + 1
            self.counts.records += 1
            self._fold_record(record, partition, offset)

        rows = self._fold.dirty_rows()
        assert self._store is not None
        self._store.save_rows(rows)
        self.counts.rows_written += len(rows)
        self._store.save_offsets(next_offsets)
        self._commit(consumer, next_offsets)

    def _fold_record(self, record: Message, partition: int, offset: int) -> None:
        """Decode one record and fold its events; skip it if it does not decode."""
        try:
            headers = cast(Headers, record.headers())  # our producers send bytes
            events = decode_events(record.value(), headers)
        except CodecError as exc:
            self.counts.undecodable_records += 1
            logger.warning(
                "undecodable record skipped",
                extra={
                    "topic": record.topic(),
                    "partition": partition,
                    "offset": offset,
                    "reason": exc.reason,
                },
            )
            return
        for index, event in enumerate(events):
            if self._fold.apply(event, partition, offset, index):
                self.counts.events_applied += 1
            else:
                self.counts.events_skipped += 1

    def _commit(self, consumer: Consumer, next_offsets: dict[int, int]) -> None:
        """Commit to Kafka for lag tools; Cassandra already holds the truth."""
        offsets = [KafkaPartition(self._topic, p, o) for p, o in next_offsets.items()]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning("offset commit failed", extra={"error": str(exc)})

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        """Load rows and saved offsets of new partitions, then start from there."""
        assert self._store is not None
        numbers = [tp.partition for tp in partitions]
        self._fold.restore(self._store.load_rows(numbers))
        saved = self._store.load_offsets()
        for tp in partitions:
            tp.offset = saved.get(tp.partition, OFFSET_BEGINNING)
        consumer.assign(partitions)
        self._assigned.update(numbers)
        logger.info("partitions assigned", extra={"partitions": numbers})

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        """Forget the rows of partitions another worker now owns."""
        numbers = [tp.partition for tp in partitions]
        self._fold.forget_partitions(numbers)
        self._assigned.difference_update(numbers)
        logger.info("partitions revoked", extra={"partitions": numbers})


def main(settings: Settings) -> int:
    """Run the worker until SIGTERM or SIGINT; 1 if the infrastructure failed."""
    worker = ProjectionWorker(settings)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.run()
    except InfrastructureError:
        logger.exception("projection worker failed")
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main(Settings.from_env()))
