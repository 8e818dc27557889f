"""The rebalance watch times restores and pauses and keeps the assignment gauges."""

from __future__ import annotations

from typing import NamedTuple

from streams import metrics
from streams.rebalance import RebalanceWatch

TOPIC = "ticketing.commands"


class TP(NamedTuple):
    topic: str
    partition: int


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels or {})
    return value or 0.0


def test_restore_and_pause_are_timed_from_revocation_and_assignment() -> None:
    clock = Clock()
    watch = RebalanceWatch(
        TOPIC, lambda: [TP("changelog", 0), TP("changelog", 1)], clock
    )
    rebalances = _sample("ticketing_agent_rebalances_total")
    restores = _sample("ticketing_agent_table_recovery_seconds_sum")
    pauses = _sample("ticketing_agent_rebalance_pause_seconds_sum")

    watch.on_revoked()
    clock.now += 2.0
    watch.on_assigned([TP(TOPIC, 5), TP(TOPIC, 2), TP("changelog", 2)])
    clock.now += 3.0
    watch.on_restored()

    assert _sample("ticketing_agent_rebalances_total") == rebalances + 1
    assert _sample("ticketing_agent_table_recovery_seconds_sum") == restores + 3.0
    assert _sample("ticketing_agent_rebalance_pause_seconds_sum") == pauses + 5.0
    active = {"role": "active"}
    assert _sample("ticketing_agent_assigned_partitions", active) == 2
    assert _sample("ticketing_agent_assigned_partitions", {"role": "standby"}) == 2


def test_a_second_revocation_before_the_restore_keeps_the_first_start() -> None:
    clock = Clock()
    watch = RebalanceWatch(TOPIC, list, clock)
    pauses = _sample("ticketing_agent_rebalance_pause_seconds_sum")

    watch.on_revoked()
    clock.now += 1.0
    watch.on_revoked()
    watch.on_assigned([])
    clock.now += 1.0
    watch.on_restored()

    assert _sample("ticketing_agent_rebalance_pause_seconds_sum") == pauses + 2.0


def test_a_restore_without_an_assignment_observes_nothing() -> None:
    watch = RebalanceWatch(TOPIC, list, Clock())
    count = _sample("ticketing_agent_table_recovery_seconds_count")

    watch.on_restored()

    assert _sample("ticketing_agent_table_recovery_seconds_count") == count
