"""The whole slice: gateway, Kafka, agent, projection and Cassandra, over HTTP."""

from __future__ import annotations

import dataclasses
import socket
from collections import Counter

import pytest

from infra.onsale import OnsalePlan, run_sale
from infra.settings import Settings
from tests.integration.support import settings_env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_onsale_sells_no_place_twice_when_buyers_collide_on_seats(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dataclasses.replace(isolated_settings, gateway_port=_free_port())
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TICKETING_GATEWAY_PORT", str(settings.gateway_port))
    plan = OnsalePlan(
        reserved_rows=3,
        seats_per_row=10,
        ga_capacity=40,
        buyers=400,
        hot_rows=1,
        max_connections=50,
    )

    sale = run_sale(plan, settings)

    outcomes = Counter(result.outcome for result in sale.results)
    ledger = sale.ledger
    assert ledger.oversold == 0
    assert sale.contested_seats > 0
    assert outcomes["held"] == ledger.holds_placed > 0
    assert set(outcomes) <= {"held", "seat-unavailable", "sold-out"}
    assert sum(outcomes.values()) == plan.buyers
    assert ledger.held_by_section["floor"] == plan.ga_capacity
    assert ledger.held_by_section["stalls"] <= plan.reserved_rows * plan.seats_per_row
