"""Settings of a cluster: host lists, replication of topics and keyspace, levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.errors import InfrastructureError
from infra import cluster
from infra.services import ServiceError
from infra.settings import Settings, SettingsError
from infra.topics import topic_specs
from projections.cql import consistency_level
from projections.schema import keyspace_replication

THREE = "127.0.0.2,127.0.0.3,127.0.0.4"


def test_bootstrap_names_every_broker_when_several_hosts_are_given() -> None:
    settings = Settings.from_env({"TICKETING_KAFKA_HOST": THREE})

    bootstrap = settings.kafka_bootstrap

    assert bootstrap == "127.0.0.2:9092,127.0.0.3:9092,127.0.0.4:9092"


def test_cassandra_contact_points_are_every_host_given() -> None:
    settings = Settings.from_env({"TICKETING_CASSANDRA_HOST": "10.0.0.1, 10.0.0.2"})

    hosts = settings.cassandra_hosts

    assert hosts == ["10.0.0.1", "10.0.0.2"]


def test_settings_refuse_a_min_isr_above_the_replication_factor() -> None:
    env = {"TICKETING_KAFKA_MIN_INSYNC_REPLICAS": "2"}

    with pytest.raises(SettingsError, match="MIN_INSYNC_REPLICAS"):
        Settings.from_env(env)


def test_topics_carry_the_min_isr_of_the_settings() -> None:
    settings = Settings(kafka_replication_factor=3, kafka_min_insync_replicas=2)

    specs = topic_specs(settings)

    assert {spec.config["min.insync.replicas"] for spec in specs} == {"2"}


def test_keyspace_is_simple_with_one_replica_by_default() -> None:
    replication = keyspace_replication(Settings())

    assert replication == "{'class': 'SimpleStrategy', 'replication_factor': 1}"


def test_keyspace_uses_network_topology_when_a_data_centre_is_named() -> None:
    settings = Settings(cassandra_datacenter="dc1", cassandra_replication_factor=3)

    replication = keyspace_replication(settings)

    assert replication == "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"


def test_keyspace_refuses_a_data_centre_name_that_is_not_plain() -> None:
    settings = Settings(cassandra_datacenter="dc1': 9, 'x")

    with pytest.raises(ValueError, match="not plain"):
        keyspace_replication(settings)


def test_consistency_level_is_the_drivers_code_of_its_name() -> None:
    assert consistency_level("local_quorum") == 6
    assert consistency_level("LOCAL_SERIAL", serial=True) == 9


def test_consistency_level_refuses_a_non_serial_level_for_compare_and_set() -> None:
    with pytest.raises(InfrastructureError, match="SERIAL"):
        consistency_level("QUORUM", serial=True)


def test_cluster_refuses_to_start_with_a_single_broker_address() -> None:
    with pytest.raises(ServiceError, match="cluster.env"):
        cluster.check_layout(Settings())


def test_cluster_voters_list_every_broker_on_the_controller_port() -> None:
    settings = Settings.from_env(
        {"TICKETING_KAFKA_HOST": THREE, "TICKETING_KAFKA_PORT": "39092"}
    )

    voters = cluster.voters(settings)

    assert voters == "1@127.0.0.2:39093,2@127.0.0.3:39093,3@127.0.0.4:39093"


def test_down_finds_every_started_node_without_the_cluster_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cluster, "CLUSTER_DIR", tmp_path)
    for name in ("kafka-1", "kafka-3", "cassandra-2", "notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pid").write_text("1\n")

    nodes = cluster.started_nodes()

    assert [node.name for node in nodes] == ["cassandra-2", "kafka-1", "kafka-3"]
