"""Integration checks that the local Kafka and Cassandra really work.

Start them first with ``python -m infra.services up``. A service that is down
makes these tests fail, never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import WhiteListRoundRobinPolicy
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from infra.services import cassandra_contact, kafka_bootstrap

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
DOWN_HINT = "is it up? run: python -m infra.services up"


def _unique(prefix: str) -> str:
    """A name no earlier run has used."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _kafka_metadata(admin: AdminClient) -> ClusterMetadata:
    """Cluster metadata, or a test failure naming the broker address."""
    try:
        return admin.list_topics(timeout=TIMEOUT)
    except KafkaException as exc:
        pytest.fail(f"Kafka at {kafka_bootstrap()} not answering ({exc}); {DOWN_HINT}")


@pytest.fixture()
def admin() -> AdminClient:
    """Admin client for the local broker (quiet while it is unreachable)."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap(), "log_level": 0})


@pytest.fixture()
def cql() -> Iterator[Cluster]:
    """A not yet connected driver cluster for the local Cassandra."""
    host, port = cassandra_contact()
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=TIMEOUT
    )
    cluster = Cluster(
        [host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile}
    )
    yield cluster
    cluster.shutdown()


def _connect(cluster: Cluster) -> Session:
    """A session, or a test failure naming the contact point."""
    try:
        return cluster.connect()
    except Exception as exc:  # noqa: BLE001 - any failure means it is down
        host, port = cassandra_contact()
        pytest.fail(f"Cassandra at {host}:{port} not answering ({exc}); {DOWN_HINT}")


def test_kafka_answers_metadata(admin: AdminClient) -> None:
    """The broker reports itself in cluster metadata."""
    metadata = _kafka_metadata(admin)
    assert [b.id for b in metadata.brokers.values()] == [1]


def test_kafka_transaction_commits(admin: AdminClient) -> None:
    """A transactional producer commits a record a read_committed consumer sees."""
    _kafka_metadata(admin)
    topic = _unique("infra-test")
    new = NewTopic(topic, num_partitions=1, replication_factor=1)
    admin.create_topics([new])[topic].result(timeout=TIMEOUT)
    try:
        producer = Producer(
            {
                "bootstrap.servers": kafka_bootstrap(),
                "transactional.id": _unique("infra-test"),
                "enable.idempotence": True,
            }
        )
        producer.init_transactions(TIMEOUT)
        producer.begin_transaction()
        producer.produce(topic, key=b"k", value=b"committed")
        producer.commit_transaction(TIMEOUT)
        assert _read_committed(topic) == [b"committed"]
    finally:
        admin.delete_topics([topic])[topic].result(timeout=TIMEOUT)


def _read_committed(topic: str, wanted: int = 1) -> list[bytes]:
    """The first values of partition 0 of topic, read as read_committed."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap(),
            "group.id": _unique("infra-test"),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        for _ in range(int(TIMEOUT / 0.5)):
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
            if len(values) >= wanted:
                break
        return values
    finally:
        consumer.close()


def test_cql_query_works(cql: Cluster) -> None:
    """Cassandra answers a query and is the 5.0 line."""
    session = _connect(cql)
    row = session.execute("SELECT release_version FROM system.local").one()
    assert row is not None
    assert row.release_version.startswith("5.0")
