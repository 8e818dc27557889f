"""The agent counts each decided command once, by type and outcome."""

from __future__ import annotations

from commands.inventory import PartitionInventory
from commands.model import Command, CreateShow, PlaceHold, SectionKind, SectionSpec
from streams import metrics


def _count(command_type: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ticketing_agent_commands_total", {"type": command_type, "outcome": outcome}
    )
    return value or 0.0


def test_a_batch_counts_every_command_once_when_its_outcomes_repeat() -> None:
    inventory = PartitionInventory()
    spec = SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=2)
    inventory.decide(CreateShow("c", 0, "s-metrics", 60, 4, (spec,)))
    holds: list[Command] = [
        PlaceHold(f"h{n}", 1, "s-metrics", "ga", f"b{n}", quantity=1) for n in range(5)
    ]
    accepted_before = _count("PlaceHold", "accepted")
    sold_out_before = _count("PlaceHold", "sold_out")
    guard_before = metrics.REGISTRY.get_sample_value(
        "ticketing_agent_oversell_guard_total", {"reason": "sold_out"}
    )

    metrics.record_decisions(holds, inventory.decide_all(holds))

    assert _count("PlaceHold", "accepted") - accepted_before == 2
    assert _count("PlaceHold", "sold_out") - sold_out_before == 3
    guard_after = metrics.REGISTRY.get_sample_value(
        "ticketing_agent_oversell_guard_total", {"reason": "sold_out"}
    )
    assert guard_after is not None
    assert guard_after - (guard_before or 0.0) == 3
