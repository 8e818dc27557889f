"""Connecting to Cassandra and mapping its rows to the availability read model."""

from __future__ import annotations

import dataclasses
import socket
from datetime import datetime
from types import SimpleNamespace

import pytest
from cassandra.cluster import NoHostAvailable

from commands.errors import InfrastructureError
from commands.model import SectionKind
from infra.settings import Settings
from projections.reader import connect, row_from_cql


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connect_raises_infrastructure_error_when_cassandra_is_unreachable() -> None:
    settings = dataclasses.replace(Settings(), cassandra_port=closed_port())

    with pytest.raises(InfrastructureError, match="unreachable") as caught:
        connect(settings)

    assert isinstance(caught.value.__cause__, NoHostAvailable)


def test_row_from_cql_maps_every_column_when_the_row_is_complete() -> None:
    row = SimpleNamespace(
        show_id="s1",
        section_id="A",
        kind="general_admission",
        capacity=10,
        held=3,
        sold=1,
        free=6,
        hold_ttl_seconds=600,
        log_partition=2,
        log_offset=41,
        log_index=5,
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 678000),
    )

    mapped = row_from_cql(row)

    assert mapped.kind is SectionKind.GENERAL_ADMISSION
    assert (mapped.held, mapped.free, mapped.log_offset, mapped.log_index) == (
        3,
        6,
        41,
        5,
    )
    assert mapped.updated_at_ms == 1_767_323_045_678
