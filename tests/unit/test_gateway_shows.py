"""POST /v1/shows: one CreateShow per partition, answered per section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from commands.inventory import section_key
from commands.model import (
    Command,
    CreateShow,
    Event,
    RejectionReason,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SetBuyerLimit,
)
from gateway.shows import content_digest, create_show_commands, show_command_id
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
    if not isinstance(command, CreateShow):
        return []
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
    if not isinstance(command, CreateShow):
        return []
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
        digest = content_digest(show, command.sections)
        assert command.command_id == show_command_id("s1", partition, digest)
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
    creates = [c for _, (c,) in gateway.bus.sent if isinstance(c, CreateShow)]
    limits = [c for _, (c,) in gateway.bus.sent if isinstance(c, SetBuyerLimit)]
    assert len(creates) == len(create_show_commands(parse_show(show_body()), 8, 0))
    assert sorted(c.command_id for c in limits) == [
        f"limit:s1:4:{p}" for p in range(8)
    ], "every partition's ledger learns the limit"


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


@dataclass(frozen=True)
class Row:
    """An availability row of the read model, as far as the gateway reads it."""

    show_id: str
    section_id: str
    kind: SectionKind = SectionKind.GENERAL_ADMISSION
    capacity: int = 10
    held: int = 0
    sold: int = 0
    free: int = 10


def ids_of(body: dict[str, Any]) -> set[str]:
    """The command ids a show body turns into."""
    return {c.command_id for _, c in create_show_commands(parse_show(body), 8, 0)}


def test_command_ids_follow_the_content_when_a_show_is_defined_again() -> None:
    bigger = show_body()
    bigger["sections"][0]["capacity"] = 11
    reordered = show_body()
    reordered["sections"].reverse()

    assert ids_of(show_body()) == ids_of(reordered)
    assert len(ids_of(show_body()) - ids_of(bigger)) == 1


async def test_show_answers_409_show_exists_and_sends_nothing_when_defined_again() -> (
    None
):
    gateway = harness(create)
    bigger = show_body()
    bigger["sections"][0]["capacity"] = 50

    async with serve(gateway.app) as client:
        first = await client.post("/v1/shows", json=show_body())
        sent = len(gateway.bus.sent)
        gateway.availability.rows["s1"] = [Row("s1", s) for s in SECTION_IDS]
        again = await client.post("/v1/shows", json=bigger)
        body = orjson.loads(await again.read())

    assert first.status == 201
    assert again.status == 409
    assert body["type"] == "/problems/show-exists"
    assert body["existing_sections"] == sorted(SECTION_IDS)
    assert len(gateway.bus.sent) == sent


async def test_show_answers_409_and_creates_nothing_when_one_section_exists() -> None:
    gateway = harness(create)
    gateway.availability.rows["s1"] = [Row("s1", "old")]

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", json=show_body(["old", "new"]))
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert body["type"] == "/problems/show-exists"
    assert gateway.bus.sent == []


async def test_retry_answers_the_first_outcome_when_the_show_is_now_projected() -> None:
    gateway = harness(create)

    async with serve(gateway.app) as client:
        first = await client.post("/v1/shows", json=show_body())
        first_body = await first.read()
        gateway.availability.rows["s1"] = [Row("s1", s) for s in SECTION_IDS]
        retry = await client.post("/v1/shows", json=show_body())
        retry_body = await retry.read()

    assert (first.status, retry.status) == (201, 201)
    assert retry_body == first_body


async def test_retry_keeps_the_first_verdict_when_a_resend_is_refused() -> None:
    gateway = harness(None, reply_timeout_seconds=0.05)
    body = show_body(["sec0"])
    [(_, command)] = create_show_commands(parse_show(body), 8, 0)

    async with serve(gateway.app) as client:
        pending = await client.post("/v1/shows", json=body)
        gateway.book.settle({command.command_id: create(command)})
        refused = SectionRejected(
            command.command_id, 2, "s1", "sec0", RejectionReason.SECTION_EXISTS
        )
        gateway.book.settle({command.command_id: [refused]})
        retry = await client.post("/v1/shows", json=body)

    assert (pending.status, retry.status) == (202, 201)


async def test_show_answers_415_when_the_body_is_not_declared_json() -> None:
    gateway = harness(create)

    async with serve(gateway.app) as client:
        response = await client.post(
            "/v1/shows",
            data=orjson.dumps(show_body()),
            headers={"Content-Type": "text/plain"},
        )

    assert response.status == 415
    assert gateway.bus.sent == []
