"""Outcomes of commands, read back from the events topic and matched by command id.

``OutcomeWaiter`` consumes the events topic in a thread, without a consumer group,
and hands decoded events by command id to an ``OutcomeBook`` on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import defaultdict
from typing import Final, cast

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from commands.errors import CodecError, InfrastructureError
from commands.model import Event
from gateway.book import OutcomeBook
from gateway.ports import Settled
from infra.settings import Settings
from infra.topics import events_topic
from schemas.codec import decode_events

logger = logging.getLogger(__name__)

CONSUME_BATCH: Final = 500
CONSUME_TIMEOUT_SECONDS: Final = 0.1
METADATA_TIMEOUT_SECONDS: Final = 10.0
LEADER_RETRY_SECONDS: Final = 0.1
_LEADERLESS: Final = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


class EventLogUnavailable(InfrastructureError):
    """The events topic could not be read."""


class OutcomeWaiter:
    """Reads the events topic in a thread and settles an ``OutcomeBook``.

    No consumer group is joined: every partition is assigned at its high watermark
    when ``start`` returns, so any command sent afterwards has its events seen.
    """

    # TODO(limit): every gateway instance reads every event; per-instance reply topic
    # when instances > ~10 or events/s > ~50k.

    def __init__(self, settings: Settings, book: OutcomeBook | None = None) -> None:
        self.book = book or OutcomeBook()
        self._topic = events_topic(settings)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                # librdkafka insists on a group id; it is never joined (assign only).
                "group.id": f"{settings.topic_prefix}-gateway-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": False,
            }
        )

    def expect(
        self, command_id: str, is_settled: Settled | None = None
    ) -> asyncio.Future[list[Event]]:
        """A future of the command's events; call it before sending the command."""
        return self.book.expect(command_id, is_settled)

    def forget(
        self, command_id: str, future: asyncio.Future[list[Event]] | None = None
    ) -> None:
        """Stop waiting for one future of a command id, or for all of them."""
        self.book.forget(command_id, future)

    def outcome(self, command_id: str) -> list[Event] | None:
        """The events recently seen for a command id, if any."""
        return self.book.outcome(command_id)

    def hold_events(self, hold_id: str) -> list[Event] | None:
        """A recent hold's events: its placing command's, then later ones."""
        return self.book.hold_events(hold_id)

    def mark_sent(self, command_id: str) -> None:
        """Note that this instance sent a command whose outcome it has not seen."""
        self.book.mark_sent(command_id)

    def claim(self, command_id: str, request_digest: str) -> str | None:
        """Claim a command id for one request at work; an earlier claim's digest."""
        return self.book.claim(command_id, request_digest)

    def release(self, command_id: str) -> None:
        """End the claim on a command id."""
        self.book.release(command_id)

    def first_digest(self, command_id: str) -> str | None:
        """The digest of the first request that claimed a command id here."""
        return self.book.first_digest(command_id)

    def is_pending(self, command_id: str) -> bool:
        """Whether this instance sent the command lately and awaits its outcome."""
        return self.book.is_pending(command_id)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Assign every partition at its high watermark, then start the thread."""
        self._loop = loop
        self._consumer.assign(self._positions())
        self._thread = threading.Thread(
            target=self._run, name="outcome-waiter", daemon=True
        )
        self._thread.start()
        logger.info("outcome waiter started", extra={"topic": self._topic})

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop the thread and close the consumer."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        self._consumer.close()

    def _positions(self) -> list[TopicPartition]:
        """Every partition of the events topic at its current high watermark."""
        try:
            metadata = self._consumer.list_topics(
                self._topic, timeout=METADATA_TIMEOUT_SECONDS
            )
            topic = metadata.topics[self._topic]
            if topic.error is not None:
                raise KafkaException(topic.error)
            return [
                TopicPartition(self._topic, p, self._high_watermark(p))
                for p in sorted(topic.partitions)
            ]
        except KafkaException as exc:
            raise EventLogUnavailable(f"cannot read {self._topic}: {exc}") from exc

    def _high_watermark(self, partition: int) -> int:
        """The offset after the last record of one partition, once it has a leader.

        A topic created moments ago may not have leaders yet, so retriable errors
        are retried until the metadata timeout.
        """
        probe = TopicPartition(self._topic, partition)
        deadline = time.monotonic() + METADATA_TIMEOUT_SECONDS
        while True:
            try:
                _, high = self._consumer.get_watermark_offsets(
                    probe, timeout=METADATA_TIMEOUT_SECONDS
                )
                return int(high)
            except KafkaException as exc:
                error = exc.args[0]
                leaderless = error.code() in _LEADERLESS or error.retriable()
                if not leaderless or time.monotonic() > deadline:
                    raise
            time.sleep(LEADER_RETRY_SECONDS)

    def _run(self) -> None:
        """Consume until stopped, handing decoded batches to the loop."""
        while not self._stopping.is_set():
            batch = self._decode(
                self._consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_SECONDS)
            )
            if batch and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self.book.settle, batch)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _decode(self, messages: list[Message]) -> dict[str, list[Event]]:
        """Events of the records, grouped by command id; bad records are skipped."""
        batch: dict[str, list[Event]] = defaultdict(list)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    logger.warning("event consume error", extra={"error": str(error)})
                continue
            try:
                headers = cast("list[tuple[str, bytes]] | None", message.headers())
                events = decode_events(message.value(), headers)
            except CodecError as exc:
                logger.warning(
                    "undecodable event batch skipped",
                    extra={
                        "topic": message.topic(),
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "reason": exc.reason,
                    },
                )
                continue
            for event in events:
                batch[event.command_id].append(event)
        return batch
