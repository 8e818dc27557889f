"""The deployment configs keep their invariants; the checks catch each breach."""

from __future__ import annotations

import pytest
import yaml

from infra import cluster, deploy_check
from infra.deploy_check import (
    check_cassandra,
    check_env,
    check_quorum,
    check_server,
    parse_env,
    parse_properties,
)
from infra.settings import Settings

DEPLOY = deploy_check.DEPLOY_DIR
CLUSTER_ENV = DEPLOY.parent / "conf" / "cluster.env"


def _servers() -> dict[str, dict[str, str]]:
    return {
        path.name: parse_properties(path.read_text())
        for path in sorted((DEPLOY / "kafka").glob("*.properties"))
    }


def _broker() -> dict[str, str]:
    return _servers()["broker-1.properties"]


def test_checked_in_deploy_configs_have_no_problems() -> None:
    problems = deploy_check.check_deploy()

    assert problems == []


def test_deploy_has_three_brokers_and_three_controllers() -> None:
    roles = [props["process.roles"] for props in _servers().values()]

    assert roles.count("broker") == 3
    assert roles.count("controller") == 3


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("default.replication.factor", "2", "default.replication.factor"),
        ("min.insync.replicas", "1", "min.insync.replicas"),
        ("unclean.leader.election.enable", "true", "unclean.leader.election"),
        ("transaction.state.log.min.isr", "1", "transaction.state.log.min.isr"),
        ("offsets.topic.replication.factor", "1", "offsets.topic.replication"),
        ("auto.create.topics.enable", "true", "auto.create.topics.enable"),
    ],
)
def test_broker_check_names_the_setting_when_durability_is_weakened(
    key: str, value: str, named: str
) -> None:
    broker = {**_broker(), key: value}

    problems = check_server("broker-1", broker)

    assert any(named in problem for problem in problems), problems


def test_broker_check_names_an_advertised_listener_that_is_not_bound() -> None:
    broker = {**_broker(), "advertised.listeners": "EXTERNAL://kafka.example:9094"}

    problems = check_server("broker-1", broker)

    assert any("does not bind" in problem for problem in problems), problems


def test_broker_check_names_an_advertised_port_other_than_the_bound_one() -> None:
    broker = {
        **_broker(),
        "advertised.listeners": "PLAINTEXT://kafka-broker-1.ticketing.internal:9999",
    }

    problems = check_server("broker-1", broker)

    assert any("advertises another" in problem for problem in problems), problems


def test_quorum_check_names_servers_that_disagree_on_the_voters() -> None:
    servers = _servers()
    servers["broker-2.properties"] = {
        **servers["broker-2.properties"],
        "controller.quorum.voters": "1@elsewhere:9093",
    }

    problems = check_quorum(servers)

    assert any("different quorums" in problem for problem in problems), problems


def test_quorum_check_names_a_voter_that_is_not_the_controllers_listener() -> None:
    servers = _servers()
    servers["controller-3.properties"] = {
        **servers["controller-3.properties"],
        "listeners": "CONTROLLER://somewhere-else:9093",
    }

    problems = check_quorum(servers)

    assert any("controller-3" in problem for problem in problems), problems


def test_env_check_names_an_unknown_setting() -> None:
    problems = check_env("agent.env", {"TICKETING_AGENT_WORKERS": "4"})

    assert "agent.env: TICKETING_AGENT_WORKERS is not a known TICKETING_* setting" in (
        problems
    )


def test_env_check_names_a_value_that_does_not_parse() -> None:
    problems = check_env("gateway.env", {"TICKETING_GATEWAY_PORT": "eighty"})

    assert any("TICKETING_GATEWAY_PORT" in problem for problem in problems)


def test_env_check_refuses_a_min_isr_above_the_replication_factor() -> None:
    env = {
        "TICKETING_KAFKA_REPLICATION_FACTOR": "3",
        "TICKETING_KAFKA_MIN_INSYNC_REPLICAS": "4",
    }

    problems = check_env("common.env", env)

    assert any("MIN_INSYNC_REPLICAS" in problem for problem in problems)


def test_cassandra_check_names_a_key_cassandra_does_not_read() -> None:
    document = {"cluster_name": "x", "max_hint_window_in_hours": 3}

    problems = check_cassandra("c.yaml", document, {"cluster_name"}, production=False)

    assert problems == ["c.yaml: unknown key max_hint_window_in_hours"]


def test_cassandra_key_list_is_what_the_fetched_cassandra_jar_reads() -> None:
    jar = deploy_check.cassandra_jar()
    if jar is None:
        pytest.skip("no cassandra-all jar fetched (make test fetches it)")

    in_jar = deploy_check.keys_in_jar(jar)

    assert in_jar == deploy_check.known_cassandra_keys()
    assert {"listen_address", "seed_provider", "max_hint_window"} <= in_jar


def _cluster_settings() -> Settings:
    return Settings.from_env(parse_env(CLUSTER_ENV.read_text()))


def test_local_cluster_env_is_made_of_known_settings() -> None:
    problems = check_env("cluster.env", parse_env(CLUSTER_ENV.read_text()))

    assert problems == []


def test_local_cluster_brokers_pass_the_deploy_checks() -> None:
    settings = _cluster_settings()
    servers = {
        node.name: parse_properties(cluster.broker_config(settings, node))
        for node in cluster.brokers(settings)
    }

    problems = [p for name, props in servers.items() for p in check_server(name, props)]
    problems += check_quorum(servers)

    assert problems == []
    assert len(servers) == 3


def test_local_cluster_cassandra_nodes_use_only_known_keys() -> None:
    settings = _cluster_settings()
    known = deploy_check.known_cassandra_keys()

    problems = [
        p
        for node in cluster.cassandra_nodes(settings)
        for p in check_cassandra(
            node.name,
            yaml.safe_load(cluster.cassandra_config(settings, node)),
            known,
            production=False,
        )
    ]

    assert problems == []


def test_local_cluster_nodes_split_the_token_ring_evenly() -> None:
    settings = _cluster_settings()
    nodes = cluster.cassandra_nodes(settings)

    tokens = [cluster.initial_token(node, len(nodes)) for node in nodes]

    assert tokens == [-(2**63), 0]
