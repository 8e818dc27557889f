"""POST /v1/shows: one CreateShow per partition, answered per section."""

from __future__ import annotations

from typing import Any

import orjson

from commands.inventory import section_key
from commands.model import (
    Command,
    CreateShow,
    Event,
    RejectionReason,
    SectionCreated,
    SectionRejected,
)
from gateway.shows import create_show_commands, show_command_id
from gateway.testing import harness, serve
from gateway.validation import parse_show
from infra.topics import partition_for

SECTION_IDS = [f"sec{n}" for n in range(12)]


def show_body(section_ids: list[str] = SECTION_IDS) -> dict[str, Any]:
    """A show of GA sections."""
    sections = [
        {"section_id": s, "kind": "general_admission", "capacity": 10}
        for s in section_ids
    ]
    return {"show_id": "s1", "sections": sections}


def create(command: Command) -> list[Event]:
    """A fake core that creates every section."""
    assert isinstance(command, CreateShow)
    return [
        SectionCreated(
            command.command_id,
            command.issued_at_ms,
            command.show_id,
            spec.section_id,
            spec.kind,
            spec.place_count(),
            command.hold_ttl_seconds,
        )
        for spec in command.sections
    ]


def refuse_first(command: Command) -> list[Event]:
    """A fake core for which the first section already exists."""
    assert isinstance(command, CreateShow)
    events = create(command)
    first = command.sections[0].section_id
    if first == SECTION_IDS[0]:
        reason = RejectionReason.SECTION_EXISTS
        events[0] = SectionRejected(command.command_id, 1, "s1", first, reason)
    return events


def test_sections_are_grouped_by_partition_when_fanned_out() -> None:
    show = parse_show(show_body())

    commands = create_show_commands(show, 8, 123)

    partitions = [partition_for(key, 8) for key, _ in commands]
    assert len(set(partitions)) == len(commands) > 1
    for (_, command), partition in zip(commands, partitions, strict=True):
        assert command.command_id == show_command_id("s1", partition)
        assert command.issued_at_ms == 123
        assert {
            partition_for(section_key("s1", spec.section_id), 8)
            for spec in command.sections
        } == {partition}
    sent = sorted(spec.section_id for _, c in commands for spec in c.sections)
    assert sent == sorted(SECTION_IDS)


async def test_show_answers_201_when_every_section_is_created() -> None:
    gateway = harness(create)

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", json=show_body())
        body = orjson.loads(await response.read())

    assert response.status == 201
    assert response.headers["Location"] == "/v1/shows/s1/availability"
    assert [s["section_id"] for s in body["sections"]] == SECTION_IDS
    assert {s["status"] for s in body["sections"]} == {"created"}
    assert len(gateway.bus.sent) == len(
        create_show_commands(parse_show(show_body()), 8, 0)
    )


async def test_show_answers_409_section_exists_when_a_section_exists() -> None:
    gateway = harness(refuse_first)

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", json=show_body())
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert body["type"] == "/problems/section-exists"
    assert body["sections"][0] == {
        "section_id": SECTION_IDS[0],
        "status": "rejected",
        "reason": "section_exists",
    }


async def test_show_answers_202_when_outcomes_do_not_come_in_time() -> None:
    gateway = harness(None, reply_timeout_seconds=0.05)

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", json=show_body())
        body = orjson.loads(await response.read())

    assert response.status == 202
    assert response.headers["Location"] == "/v1/shows/s1/availability"
    assert body == {"show_id": "s1", "status": "pending"}


async def test_retry_sends_nothing_new_when_the_show_was_created() -> None:
    gateway = harness(create)

    async with serve(gateway.app) as client:
        first = await client.post("/v1/shows", json=show_body())
        sent = len(gateway.bus.sent)
        retry = await client.post("/v1/shows", json=show_body())

    assert (first.status, retry.status) == (201, 201)
    assert len(gateway.bus.sent) == sent
