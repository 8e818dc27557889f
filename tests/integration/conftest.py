"""Fixtures for tests against the real Kafka and Cassandra that infra starts.

These tests fail, never skip, when a service is down: run
``python -m infra.services up`` (the test command does) first.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from infra.settings import Settings
from infra.topics import ensure_topics


@pytest.fixture
def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings with topics, group and keyspace of their own, removed afterwards."""
    run = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(
        Settings.from_env(),
        topic_prefix=f"test-{run}",
        agent_id=f"test-{run}-agent",
        agent_data_dir=str(tmp_path_factory.mktemp("agent")),
        projection_group=f"test-{run}-projection",
        cassandra_keyspace=f"test_{run}",
        gateway_port=0,
    )
    ensure_topics(settings)
    yield settings
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [
        name
        for name in admin.list_topics(timeout=10).topics
        if name.startswith(settings.topic_prefix) or name.startswith(settings.agent_id)
    ]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result(timeout=30)
