"""Topic names, their partition counts and configs, and our one partitioner.

Producers and agents must agree on the partition of a key, so nothing relies on a
client's default partitioner: every producer sets the partition explicitly, from
``infra.routing.Router`` (a moved section's route, else ``partition_for``).
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from commands.errors import InfrastructureError
from infra.settings import Settings

logger = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic we own: its name, partitions and configs."""

    name: str
    partitions: int
    config: dict[str, str]


def commands_topic(settings: Settings) -> str:
    """Commands to the inventory agents, keyed by show/section."""
    return f"{settings.topic_prefix}.commands"


def events_topic(settings: Settings) -> str:
    """Events the agents decided: the source of truth, kept forever."""
    return f"{settings.topic_prefix}.events"


def routing_topic(settings: Settings) -> str:
    """Routes of moved sections, keyed by show/section; compacted, one partition."""
    return f"{settings.topic_prefix}.routing"


def dead_letters_topic(settings: Settings) -> str:
    """Records that could not be decoded or applied, with a reason header."""
    return f"{settings.topic_prefix}.dead-letters"


def dead_letter_headers(
    reason: str, error: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why, and where its original record was."""
    return [
        ("reason", reason.encode()),
        ("error", error.encode()),
        ("source-topic", topic.encode()),
        ("source-partition", str(partition).encode()),
        ("source-offset", str(offset).encode()),
    ]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the system needs, with explicit partitions and configs."""
    partitions = settings.command_partitions
    min_isr = str(settings.kafka_min_insync_replicas)
    return [
        TopicSpec(
            commands_topic(settings),
            partitions,
            {"retention.ms": str(7 * DAY_MS), "min.insync.replicas": min_isr},
        ),
        TopicSpec(
            events_topic(settings),
            partitions,
            {"retention.ms": "-1", "min.insync.replicas": min_isr},
        ),
        TopicSpec(
            dead_letters_topic(settings),
            partitions,
            {"retention.ms": str(28 * DAY_MS), "min.insync.replicas": min_isr},
        ),
        # One partition: a router reads every route, in the order they were written.
        TopicSpec(
            routing_topic(settings),
            1,
            {"cleanup.policy": "compact", "min.insync.replicas": min_isr},
        ),
    ]


def partition_for(key: str, partitions: int) -> int:
    """The hashed partition of a key, the same in every process.

    A key without a route lives here; ``infra.routing.Router`` looks up routes
    first. Keys that must reach every partition (``keys_for_every_partition``)
    never have a route.
    """
    return zlib.crc32(key.encode()) % partitions


def keys_for_every_partition(prefix: str, partitions: int) -> list[str]:
    """One key per partition, in partition order, each routed to its partition.

    For commands that every partition must see (a show's buyer limit): the keys
    are ``<prefix>/<n>`` with the smallest ``n`` that lands on each partition.
    """
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        key = f"{prefix}/{n}"
        found.setdefault(partition_for(key, partitions), key)
        n += 1
    return [found[p] for p in range(partitions)]


def ensure_topics(settings: Settings, timeout_seconds: float = 30.0) -> list[str]:
    """Create missing topics; existing ones are left as they are. Returns created."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        existing = admin.list_topics(timeout=timeout_seconds).topics
    except KafkaException as exc:
        raise InfrastructureError(
            f"Kafka at {settings.kafka_bootstrap} did not answer: {exc}"
        ) from exc

    missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
    if not missing:
        return []
    replicas = settings.kafka_replication_factor
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, replicas, config=s.config) for s in missing],
        operation_timeout=timeout_seconds,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_seconds)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise InfrastructureError(f"cannot create topic {name}: {exc}") from exc
    _wait_until_every_broker_knows(settings, created, timeout_seconds)
    logger.info("topics created", extra={"topics": created})
    return created


def _wait_until_every_broker_knows(
    settings: Settings, names: list[str], timeout_seconds: float
) -> None:
    """Wait (bounded) until each bootstrap broker lists the topics with leaders.

    A broker learns of a new topic from the controller a moment after the
    creation returns; a client asking it before then is told the topic does
    not exist.
    """
    deadline = time.monotonic() + timeout_seconds
    for host in settings.kafka_hosts:
        broker = AdminClient({"bootstrap.servers": f"{host}:{settings.kafka_port}"})
        while not _knows(broker, names):
            if time.monotonic() >= deadline:
                raise InfrastructureError(
                    f"broker {host} does not list topics {names} after "
                    f"{timeout_seconds:.0f} s"
                )
            time.sleep(0.1)


def _knows(broker: AdminClient, names: list[str]) -> bool:
    """Whether the broker lists every topic, each partition with a leader."""
    try:
        topics = broker.list_topics(timeout=5).topics
    except KafkaException:
        return False
    return all(
        name in topics
        and topics[name].error is None
        and all(p.leader >= 0 for p in topics[name].partitions.values())
        for name in names
    )
