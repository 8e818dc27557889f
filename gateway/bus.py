"""The command bus: appends command batches to the commands topic and awaits the ack.

Every record goes to the partition the ``Router`` gives its key (a moved
section's route, else the stable hash), never to the client's default
partitioner; the router follows the routing topic while the bus runs. A
background thread serves the producer's delivery reports, which resolve the
senders' futures on their event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
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


def _settle_delivery(future: asyncio.Future[None], error: KafkaError | None) -> None:
    """Resolve a sender's future from a delivery report, on its loop."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(CommandLogUnavailable(f"delivery failed: {error.name()}"))


def _on_delivery(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[None],
    error: KafkaError | None,
    _message: Message,
) -> None:
    """Delivery report callback, run on the poll thread."""
    try:
        loop.call_soon_threadsafe(_settle_delivery, future, error)
    except RuntimeError:  # the loop is closed: the sender is gone
        pass


class CommandBus:
    """Sends command batches to the commands topic, one record per batch."""

    def __init__(
        self,
        settings: Settings,
        send_timeout_seconds: float = SEND_TIMEOUT_SECONDS,
        router: Router | None = None,
    ) -> None:
        self._topic = commands_topic(settings)
        self.router = router or Router(settings)
        self._timeout_seconds = send_timeout_seconds
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
        """Append one batch under ``key``; resolve when Kafka acknowledged it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        headers: list[tuple[str, str | bytes | None]] = list(command_headers())
        try:
            self._producer.produce(
                self._topic,
                value=encode_commands(commands),
                key=key.encode(),
                partition=self.router.partition(key),
                headers=headers,
                on_delivery=partial(_on_delivery, loop, future),
            )
        except (KafkaException, BufferError) as exc:
            raise CommandLogUnavailable(f"cannot queue a command: {exc}") from exc

        try:
            await asyncio.wait_for(future, self._timeout_seconds)
        except TimeoutError as exc:
            raise CommandLogUnavailable("no acknowledgement in time") from exc

    def _poll(self) -> None:
        """Serve delivery reports until stopped."""
        while not self._stopping.is_set():
            self._producer.poll(POLL_TIMEOUT_SECONDS)
