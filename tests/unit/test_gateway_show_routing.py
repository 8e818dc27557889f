"""A show's sections are grouped by the bus's routing, routes included."""

from __future__ import annotations

from commands.inventory import section_key
from gateway.shows import create_show_commands
from gateway.validation import parse_show
from infra.routing import Route, RoutingTable
from infra.topics import partition_for

PARTITIONS = 8


def test_a_routed_section_joins_the_sections_of_its_route_when_a_show_is_created() -> (
    None
):
    names = [f"sec{n}" for n in range(3)]
    hashed = {n: partition_for(section_key("s1", n), PARTITIONS) for n in names}
    moved, host = next((m, h) for m in names for h in names if hashed[m] != hashed[h])
    table = RoutingTable({section_key("s1", moved): Route(hashed[host], 1)})
    body = {
        "show_id": "s1",
        "sections": [
            {"section_id": n, "kind": "general_admission", "capacity": 10}
            for n in names
        ],
    }

    commands = create_show_commands(
        parse_show(body),
        PARTITIONS,
        123,
        lambda key: table.partition(key, PARTITIONS),
    )

    groups = [{spec.section_id for spec in c.sections} for _, c in commands]
    assert any({moved, host} <= group for group in groups)
    for key, command in commands:
        partition = table.partition(key, PARTITIONS)
        assert all(
            table.partition(section_key("s1", spec.section_id), PARTITIONS) == partition
            for spec in command.sections
        )
