"""The command bus: appends command batches to the commands topic and awaits the ack.

Every record goes to the partition the ``Router`` gives its key (a moved
section's route, else the stable hash), never to the client's default
partitioner; the router follows the routing topic while the bus runs. Sends
made in the same turn of the event loop are packed, per partition and in the
order they were made, into one record of up to ``MAX_COMMANDS_PER_RECORD``
commands: under a spike the agent then decodes and commits a few large records
instead of many small ones, and no send waits for a timer. A background thread
serves the producer's delivery reports, which resolve the senders' futures on
their event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from commands.errors import InfrastructureError
from commands.model import Command
from infra.routing import Router
from infra.settings import Settings
from infra.topics import commands_topic
from schemas.codec import command_headers, encode_commands

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS: Final = 5.0
POLL_TIMEOUT_SECONDS: Final = 0.1
MAX_COMMANDS_PER_RECORD: Final = 256
"""Commands packed into one record at most (a few hundred bytes each)."""
PACKED_KEY_PREFIX: Final = "~packed/"
"""Key of a record that packs the commands of several keys: ``~packed/<partition>``."""


class CommandLogUnavailable(InfrastructureError):
    """The commands topic did not acknowledge a batch in time."""


def producer_config(settings: Settings, timeout_seconds: float) -> dict[str, Any]:
    """Producer settings: idempotent, fully acknowledged, lz4, near-zero linger."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "compression.type": "lz4",
        # librdkafka gives up on a record about when the sender stops waiting.
        "delivery.timeout.ms": int(timeout_seconds * 1000),
        "error_cb": _log_client_error,
    }


def _log_client_error(error: KafkaError) -> None:
    """Log a client-level error (broker down, auth) once, where it surfaces."""
    logger.warning("command producer error", extra={"error": str(error)})


@dataclass(frozen=True, slots=True)
class PendingSend:
    """One sender's commands, waiting to be packed into a record."""

    key: str
    commands: Sequence[Command]
    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class PackedRecord:
    """Sends of one partition packed into one record, in the order they were made."""

    key: str
    sends: tuple[PendingSend, ...]

    def commands(self) -> list[Command]:
        """Every packed command, senders in order, each sender's in its order."""
        return [command for send in self.sends for command in send.commands]


def pack(
    partition: int, sends: Sequence[PendingSend], max_commands: int
) -> list[PackedRecord]:
    """Pack a partition's sends, in order, into records of at most ``max_commands``.

    A send is never split (its commands travel in one record); a send larger than
    the bound gets a record of its own. A record of one key keeps that key.
    """
    records: list[PackedRecord] = []
    current: list[PendingSend] = []
    size = 0
    for send in sends:
        if current and size + len(send.commands) > max_commands:
            records.append(_packed(partition, current))
            current, size = [], 0
        current.append(send)
        size += len(send.commands)
    if current:
        records.append(_packed(partition, current))
    return records


def _packed(partition: int, sends: list[PendingSend]) -> PackedRecord:
    keys = {send.key for send in sends}
    key = sends[0].key if len(keys) == 1 else f"{PACKED_KEY_PREFIX}{partition}"
    return PackedRecord(key, tuple(sends))


def _settle_delivery(
    futures: Sequence[asyncio.Future[None]], error: KafkaError | None
) -> None:
    """Resolve the senders' futures of a record from its delivery report."""
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            failed = CommandLogUnavailable(f"delivery failed: {error.name()}")
            future.set_exception(failed)


def _on_delivery(
    loop: asyncio.AbstractEventLoop,
    futures: Sequence[asyncio.Future[None]],
    error: KafkaError | None,
    _message: Message,
) -> None:
    """Delivery report callback, run on the poll thread."""
    try:
        loop.call_soon_threadsafe(_settle_delivery, futures, error)
    except RuntimeError:  # the loop is closed: the senders are gone
        pass


class CommandBus:
    """Sends command batches to the commands topic, packed per partition."""

    def __init__(
        self,
        settings: Settings,
        send_timeout_seconds: float = SEND_TIMEOUT_SECONDS,
        max_commands_per_record: int = MAX_COMMANDS_PER_RECORD,
        router: Router | None = None,
    ) -> None:
        self._topic = commands_topic(settings)
        self.router = router or Router(settings)
        self._timeout_seconds = send_timeout_seconds
        self._max_commands = max_commands_per_record
        self._pending: dict[int, list[PendingSend]] = {}
        self._flush_scheduled = False
        self.records_sent = 0
        """Records produced so far (each packs one or more sends)."""
        self._producer = Producer(producer_config(settings, send_timeout_seconds))
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._poll, name="command-bus", daemon=True
        )

    def start(self) -> None:
        """Read the routes, then start serving delivery reports."""
        self.router.start()
        self._thread.start()
        logger.info("command bus started", extra={"topic": self._topic})

    def close(self, timeout_seconds: float = SEND_TIMEOUT_SECONDS) -> None:
        """Deliver what is queued (bounded), then stop the thread."""
        self._producer.flush(timeout_seconds)
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_seconds)
        self.router.close()

    def partition(self, key: str) -> int:
        """The command partition a record with this key goes to now."""
        return self.router.partition(key)

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        """Append one batch under ``key``; resolve when Kafka acknowledged it.

        The batch is packed with the other sends of this turn of the loop for the
        same partition; its commands stay together and in order.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        partition = self.router.partition(key)
        self._pending.setdefault(partition, []).append(
            PendingSend(key, commands, future)
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, loop)
        try:
            await asyncio.wait_for(future, self._timeout_seconds)
        except TimeoutError as exc:
            raise CommandLogUnavailable("no acknowledgement in time") from exc

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Produce this turn's sends, one record per packed group."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for partition, sends in pending.items():
            for record in pack(partition, sends, self._max_commands):
                self._produce(loop, partition, record)

    def _produce(
        self, loop: asyncio.AbstractEventLoop, partition: int, record: PackedRecord
    ) -> None:
        futures = [send.future for send in record.sends]
        headers: list[tuple[str, str | bytes | None]] = list(command_headers())
        try:
            self._producer.produce(
                self._topic,
                value=encode_commands(record.commands()),
                key=record.key.encode(),
                partition=partition,
                headers=headers,
                on_delivery=partial(_on_delivery, loop, futures),
            )
        except (KafkaException, BufferError) as exc:
            for future in futures:
                if not future.done():
                    future.set_exception(
                        CommandLogUnavailable(f"cannot queue a command: {exc}")
                    )
            return
        self.records_sent += 1

    def _poll(self) -> None:
        """Serve delivery reports until stopped."""
        while not self._stopping.is_set():
            self._producer.poll(POLL_TIMEOUT_SECONDS)
