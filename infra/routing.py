"""The routing table: which command partition an inventory key lives on.

A key's partition is its route if the routing topic has one, else the stable hash
of ``infra.topics.partition_for``. Routes are written only by the inventory
agent, in the transaction that hands a section off (``commands.moves``), as
records keyed by the section's key on the compacted ``<prefix>.routing`` topic
(one partition). A record's value is JSON ``{"partition": p, "epoch": e}``; of two
routes of one key the higher epoch wins, whatever order they are read in.

Every producer of commands and the agent route with one ``Router``. It reads the
routing topic to its end when it starts, then follows it from a background
thread (read_committed, fetch wait 100 ms), so a new route is used about 0.1-0.2 s
after the hand-off commits (more when the broker is slow). A record sent with the
older route in that window is not lost: the old owner forwards it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from commands.errors import InfrastructureError
from infra.settings import Settings
from infra.topics import partition_for, routing_topic

logger = logging.getLogger(__name__)

POLL_TIMEOUT_SECONDS: Final = 0.1
FETCH_WAIT_MS: Final = 100
START_TIMEOUT_SECONDS: Final = 15.0


@dataclass(frozen=True, slots=True)
class Route:
    """A key lives on ``partition`` since its ``epoch``-th move."""

    partition: int
    epoch: int


def encode_route(route: Route) -> bytes:
    """The value of a routing record."""
    return orjson.dumps({"partition": route.partition, "epoch": route.epoch})


def decode_route(value: bytes | None) -> Route | None:
    """The route a record's value names, or None for a tombstone or garbage."""
    if not value:
        return None
    try:
        raw = orjson.loads(value)
        return Route(int(raw["partition"]), int(raw["epoch"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class RoutingTable:
    """Routes by key; a route with a higher epoch replaces an older one."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self._routes: dict[str, Route] = dict(routes or {})

    def apply(self, key: str, route: Route) -> bool:
        """Take a route unless the key has one of an equal or newer epoch."""
        known = self._routes.get(key)
        if known is not None and known.epoch >= route.epoch:
            return False
        self._routes[key] = route
        return True

    def route(self, key: str) -> Route | None:
        """The route of a key, if it has one."""
        return self._routes.get(key)

    def routes(self) -> dict[str, Route]:
        """A copy of every route."""
        return dict(self._routes)

    def partition(self, key: str, partitions: int) -> int:
        """The key's partition: its route if valid, else the stable hash."""
        route = self._routes.get(key)
        if route is not None and 0 <= route.partition < partitions:
            return route.partition
        return partition_for(key, partitions)


class Router:
    """Maps inventory keys to command partitions, following the routing topic."""

    def __init__(self, settings: Settings, follow: bool = True) -> None:
        self.settings = settings
        self.table = RoutingTable()
        self._partitions = settings.command_partitions
        self._follow = follow
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self.routes_read = 0
        self._caught_up = not follow

    @classmethod
    def hashed(cls, settings: Settings) -> Router:
        """A router that reads no topic: the stable hash, and routes given by hand."""
        return cls(settings, follow=False)

    def partition(self, key: str) -> int:
        """The command partition of an inventory key."""
        return self.table.partition(key, self._partitions)

    def apply(self, records: Iterable[tuple[str, Route]]) -> None:
        """Take routes (read from the topic, or known to the caller)."""
        # Routes read while catching up at start are history: one line for all.
        level = logging.INFO if self._caught_up else logging.DEBUG
        for key, route in records:
            if self.table.apply(key, route):
                logger.log(
                    level,
                    "route changed",
                    extra={
                        "key": key,
                        "partition": route.partition,
                        "epoch": route.epoch,
                    },
                )

    def start(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> None:
        """Read every route to the end of the topic, then follow it in a thread."""
        if not self._follow or self._thread is not None:
            return
        self._consumer = _routing_consumer(self.settings)
        deadline = time.monotonic() + timeout_seconds
        caught_up = False
        while not caught_up and time.monotonic() < deadline:
            caught_up = self._poll_once()
        if not caught_up:
            logger.warning(
                "routing topic not read to its end at start; hashing until it is",
                extra={"topic": routing_topic(self.settings)},
            )
        else:
            logger.info("routes read", extra={"routes": len(self.table.routes())})
        self._caught_up = True
        self._thread = threading.Thread(
            target=self._follow_topic, name="router", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop following the topic."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _follow_topic(self) -> None:
        while not self._stopping.is_set():
            try:
                self._poll_once()
            except InfrastructureError as exc:
                logger.warning("routing topic unreadable", extra={"error": str(exc)})
                self._stopping.wait(1.0)

    def _poll_once(self) -> bool:
        """Apply the records of one poll; True if the end of the topic was seen."""
        try:
            messages = self._consumer.consume(500, POLL_TIMEOUT_SECONDS)
        except KafkaException as exc:
            raise InfrastructureError(f"cannot read routes: {exc}") from exc
        at_end = False
        for message in messages:
            error = message.error()
            if error is not None:
                at_end |= error.code() == KafkaError._PARTITION_EOF
                continue
            route = decode_route(message.value())
            if route is not None and message.key():
                self.routes_read += 1
                self.apply([(message.key().decode(), route)])
        return at_end


def _routing_consumer(settings: Settings) -> Any:
    """A consumer of the whole routing topic, in no group, committed records only."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-router",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
        }
    )
    consumer.assign([TopicPartition(routing_topic(settings), 0, OFFSET_BEGINNING)])
    return consumer


def read_routes(settings: Settings, timeout_seconds: float = 10.0) -> dict[str, Route]:
    """Every route on the topic now (for tools that do not follow it)."""
    router = Router(settings)
    router._consumer = _routing_consumer(settings)
    try:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline and not router._poll_once():
            pass
    finally:
        router._consumer.close()
        router._consumer = None
    return router.table.routes()
