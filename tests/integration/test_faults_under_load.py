"""Faults under a steady sale: each one repaired, the promises checked after it.

One system (agent, projection worker, provider, payments worker, gateway) runs
for the module against the Kafka and Cassandra of ``ticketing services up``;
each test opens a show of its own, lets buyers hold and check out over HTTP at a
steady rate (``bench.fault_load``), breaks one thing, repairs it, and then reads
the event log and the provider's records: nothing oversold, every charged hold
ended in exactly one sale or one refund, nothing charged twice, the read model
caught up. Each test also asserts the sale recovered: a checkout succeeded after
the repair and the checkout rate came back to 80 % of the rate before the fault
within the time the buyers kept coming.

The Kafka and Cassandra tests stop the real services through ``infra.services``
and start them again before they end, ready for the tests that follow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from bench.fault_load import READ_REFUSED, READ_STALE
from bench.fault_scenario import FaultReport, under_load
from bench.fault_system import FaultSystem, isolated
from infra import services
from infra.settings import Settings

pytestmark = pytest.mark.integration

CASSANDRA_OUTAGE_SECONDS = 20.0
KAFKA_OUTAGE_SECONDS = 10.0
PROVIDER_OUTAGE_SECONDS = 10.0


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultSystem]:
    settings = isolated(Settings.from_env(), tmp_path_factory.mktemp("agent"))
    found = FaultSystem(settings, tmp_path_factory.mktemp("logs"))
    try:
        found.start()
        yield found
    finally:
        found.stop()
        found.delete_topics()


def _show() -> str:
    return f"fault-{uuid.uuid4().hex[:8]}"


def _assert_recovered(
    report: FaultReport,
    system: FaultSystem,
    may_restart: frozenset[str] | set[str] = frozenset(),
) -> None:
    print(json.dumps(report.as_dict(), indent=1))  # the figures, in the test log
    assert report.check.problems() == []
    assert report.check.oversold == 0
    assert report.checkouts.baseline_per_second > 0, "the sale ran before the fault"
    assert report.checkouts.first_success_seconds is not None
    assert report.checkouts.rate_recovered_seconds is not None
    assert report.sold.first_success_seconds is not None, "tickets sold after it"
    assert set(report.restarts) <= may_restart, "no other process exited"


def test_the_sale_goes_on_when_a_poison_command_lands_among_its_commands(
    system: FaultSystem,
) -> None:
    show = _show()
    before = system.dead_letters()

    report = under_load(system, show, lambda: system.poison(show, "floor-a"))

    _assert_recovered(report, system)
    assert system.dead_letters() == before + 1, "the poison record is dead-lettered"


def test_each_charged_hold_ends_once_when_the_provider_comes_back(
    system: FaultSystem,
) -> None:
    show = _show()
    refused_before = system.provider_state()["calls_refused"]

    report = under_load(
        system, show, lambda: system.provider_outage(PROVIDER_OUTAGE_SECONDS)
    )

    _assert_recovered(report, system)
    assert system.provider_state()["calls_refused"] > refused_before
    assert report.checkouts.during_per_second > 0, "holds and checkouts go on"


def test_holds_go_on_and_reads_turn_stale_when_cassandra_is_down(
    system: FaultSystem,
) -> None:
    show = _show()

    try:
        report = under_load(
            system, show, lambda: system.cassandra_outage(CASSANDRA_OUTAGE_SECONDS)
        )
    finally:
        services.start_one(services.CASSANDRA)  # ready for the tests that follow

    _assert_recovered(report, system)
    assert report.checkouts.during_per_second > 0, "writes go on without Cassandra"
    reads = report.reads_during_fault
    assert reads.get(READ_STALE, 0) > 0, "reads say they are stale"
    assert reads.get(READ_REFUSED, 0) == 0, "a show read before is never refused"
    assert report.check.caught_up_seconds is not None


def test_each_command_is_decided_once_when_the_agent_is_killed_under_load(
    system: FaultSystem,
) -> None:
    show = _show()

    report = under_load(system, show, system.kill_agent)

    _assert_recovered(report, system)


def test_the_gateway_sheds_then_the_sale_recovers_when_kafka_restarts(
    system: FaultSystem,
) -> None:
    show = _show()

    try:
        report = under_load(
            system, show, lambda: system.kafka_outage(KAFKA_OUTAGE_SECONDS)
        )
    finally:
        services.start_one(services.KAFKA)  # ready for the tests that follow

    _assert_recovered(report, system, may_restart={"agent"})
    assert report.outcomes.get("503:unavailable", 0) > 0, "503 while the log is down"
