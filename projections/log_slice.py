"""Reading the whole event log once, from offset zero to the end it had at start.

The end of each partition (its high watermark) is taken when reading starts, so
an export is a fixed slice however much is written meanwhile, and its counts can
be checked against those offsets. Reading is ``read_committed``: events of
aborted transactions are never seen. Transaction markers take offsets but are
never delivered, so the end is reached when the consumer's position passes it,
not when a record at ``end - 1`` arrives.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Final, cast

from confluent_kafka import Consumer, KafkaException, TopicPartition

from commands.errors import CodecError, InfrastructureError
from commands.model import Event
from infra.settings import Settings
from infra.topics import events_topic
from projections.export import ExportCounts
from schemas.codec import Headers, decode_events

logger = logging.getLogger(__name__)

METADATA_TIMEOUT_SECONDS: Final = 10.0
POLL_SECONDS: Final = 0.5
RECORDS_PER_POLL: Final = 1000

Progress = Callable[[ExportCounts, int], None]
"""Called about once a second with the counts so far and the records to read."""


def log_events(
    settings: Settings,
    counts: ExportCounts,
    progress: Progress | None = None,
    timeout_seconds: float = 3600.0,
) -> Iterator[tuple[int, int, int, Event]]:
    """Every committed event up to the ends at start: (partition, offset, index)."""
    topic = events_topic(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-export-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        counts.end_offsets = end_offsets(consumer, topic)
        total = sum(counts.end_offsets.values())
        wanted = {p: end for p, end in counts.end_offsets.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        deadline = time.monotonic() + timeout_seconds
        shown = time.monotonic()
        while wanted and not _reached(consumer, topic, wanted):
            if time.monotonic() > deadline:
                raise InfrastructureError("the event log was not read to its end")
            for message in consumer.consume(RECORDS_PER_POLL, POLL_SECONDS):
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None or offset >= wanted[partition]:
                    continue
                counts.records += 1
                yield from _decoded(message, partition, offset, counts)
            if progress is not None and time.monotonic() - shown >= 1.0:
                shown = time.monotonic()
                progress(counts, total)
    except KafkaException as exc:
        raise InfrastructureError(f"Kafka could not read the event log: {exc}") from exc
    finally:
        consumer.close()


def _decoded(
    message: object, partition: int, offset: int, counts: ExportCounts
) -> Iterator[tuple[int, int, int, Event]]:
    """The events of one record; none, counted, if it does not decode."""
    try:
        value = message.value()  # type: ignore[attr-defined]
        headers = cast(Headers, message.headers())  # type: ignore[attr-defined]
        events = decode_events(value, headers)
    except CodecError as exc:
        counts.undecodable_records += 1
        logger.warning(
            "undecodable record skipped",
            extra={"partition": partition, "offset": offset, "reason": exc.reason},
        )
        return
    for index, event in enumerate(events):
        yield partition, offset, index, event


def end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    """The high watermark of every partition of the topic, now."""
    meta = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_SECONDS)
    found = meta.topics.get(topic)
    if found is None or found.error is not None:
        raise InfrastructureError(f"the topic {topic} cannot be read")
    partitions = found.partitions
    return {
        p: consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=METADATA_TIMEOUT_SECONDS
        )[1]
        for p in sorted(partitions)
    }


def _reached(consumer: Consumer, topic: str, ends: dict[int, int]) -> bool:
    """Whether the consumer's position reached each partition's end."""
    positions = consumer.position([TopicPartition(topic, p) for p in ends])
    return all(tp.offset >= ends[tp.partition] for tp in positions)
