"""Show routes: create a show's sections, one CreateShow per partition they live on.

Each partition's command id is derived from the show, the partition and a digest of
what that partition is asked to create, so the very same request maps to the same
commands (a retry is answered from the outcomes already seen, without sending
again) while another definition of the show never borrows the first one's answer.
A show that already has sections in the read model is refused with 409
``show-exists`` before anything is sent, so a request is never half applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, Final

import orjson
from aiohttp import web

from commands.inventory import section_key
from commands.model import (
    CreateShow,
    Event,
    SectionCreated,
    SectionRejected,
    SectionSpec,
    SetBuyerLimit,
)
from gateway.book import section_verdicts
from gateway.deps import (
    BUS,
    OUTCOMES,
    PARTITION_OF,
    PARTITIONS,
    REPLY_TIMEOUT,
    SHOW_SOURCE,
    PartitionOf,
)
from gateway.http import json_response, read_body
from gateway.inputs import require_json
from gateway.ports import CommandSender, OutcomeSource, Settled
from gateway.problems import REJECTION_SLUGS, HttpProblem
from gateway.validation import ShowRequest, parse_json, parse_show
from infra.topics import keys_for_every_partition, partition_for

SHOW_BODY_LIMIT_BYTES: Final = 1024 * 1024
PENDING_RETRY_AFTER_SECONDS: Final = 1


def show_command_id(show_id: str, partition: int, content_digest: str) -> str:
    """The command id of a show's CreateShow on one partition, for one content."""
    named = f"{show_id}\x00{partition}\x00{content_digest}"
    return hashlib.sha256(named.encode()).hexdigest()[:32]


def content_digest(show: ShowRequest, specs: Sequence[SectionSpec]) -> str:
    """A digest of what one CreateShow creates: settings and sections by id.

    Canonical: sections sorted by id, keys sorted; rows and seats keep plan order.
    """
    content = {
        "show_id": show.show_id,
        "hold_ttl_seconds": show.hold_ttl_seconds,
        "max_tickets_per_buyer": show.max_tickets_per_buyer,
        "sections": [
            dataclasses.asdict(spec)
            for spec in sorted(specs, key=lambda spec: spec.section_id)
        ],
    }
    return hashlib.sha256(
        orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def create_show_commands(
    show: ShowRequest,
    partitions: int,
    issued_at_ms: int,
    partition_of: PartitionOf | None = None,
) -> list[tuple[str, CreateShow]]:
    """One (key, CreateShow) per partition, holding only that partition's sections.

    The key is the first section's key, so it routes to the command's partition.
    ``partition_of`` is the bus's routing (the stable hash if None): a section
    moved earlier is then refused where it lives, never created a second time.
    """
    route = partition_of or partial(partition_for, partitions=partitions)
    by_partition: dict[int, list[Any]] = {}
    for spec in show.sections:
        partition = route(section_key(show.show_id, spec.section_id))
        by_partition.setdefault(partition, []).append(spec)
    return [
        (
            section_key(show.show_id, specs[0].section_id),
            CreateShow(
                command_id=show_command_id(
                    show.show_id, partition, content_digest(show, specs)
                ),
                issued_at_ms=issued_at_ms,
                show_id=show.show_id,
                hold_ttl_seconds=show.hold_ttl_seconds,
                max_tickets_per_buyer=show.max_tickets_per_buyer,
                sections=tuple(specs),
            ),
        )
        for partition, specs in sorted(by_partition.items())
    ]


def every_section_answered(command: CreateShow) -> Settled:
    """A predicate: each section of the command has a verdict."""
    wanted = {spec.section_id for spec in command.sections}

    def settled(events: Sequence[Event]) -> bool:
        return wanted <= section_verdicts(events).keys()

    return settled


def availability_location(show_id: str) -> str:
    """Where a show's sections can be read."""
    return f"/v1/shows/{show_id}/availability"


def buyer_limit_commands(
    show: ShowRequest, partitions: int, issued_at_ms: int
) -> list[tuple[str, SetBuyerLimit]]:
    """The show's per-buyer limit, once for every partition's buyers' ledger."""
    limit = show.max_tickets_per_buyer
    return [
        (
            key,
            SetBuyerLimit(
                command_id=f"limit:{show.show_id}:{limit}:{partition}",
                issued_at_ms=issued_at_ms,
                show_id=show.show_id,
                max_tickets_per_buyer=limit,
            ),
        )
        for partition, key in enumerate(
            keys_for_every_partition(f"{show.show_id}/~limit", partitions)
        )
    ]


async def create_show(request: web.Request) -> web.Response:
    """POST /v1/shows (admin)."""
    # TODO(limit): admin auth comes with the gateway issue.
    require_json(request)
    show = parse_show(parse_json(await read_body(request, SHOW_BODY_LIMIT_BYTES)))
    now_ms = time.time_ns() // 1_000_000
    commands = create_show_commands(
        show, request.app[PARTITIONS], now_ms, request.app[PARTITION_OF]
    )
    outcomes, bus = request.app[OUTCOMES], request.app[BUS]
    if not _sent_here(outcomes, commands):
        await _refuse_if_show_exists(request, show.show_id)

    # Expect every outcome before sending; send only what is not known yet.
    futures = [
        outcomes.expect(c.command_id, every_section_answered(c)) for _, c in commands
    ]
    unanswered = [
        (key, command)
        for (key, command), future in zip(commands, futures, strict=True)
        if not future.done()
    ]
    try:
        if unanswered:
            await _send_buyer_limits(bus, show, request.app[PARTITIONS], now_ms)
        await asyncio.gather(*(bus.send(key, [c]) for key, c in unanswered))
        for _, command in commands:
            outcomes.mark_sent(command.command_id)
        answers = await asyncio.wait_for(
            asyncio.gather(*futures), request.app[REPLY_TIMEOUT]
        )
    except TimeoutError:
        return _pending(show.show_id)
    finally:
        for (_, command), future in zip(commands, futures, strict=True):
            outcomes.forget(command.command_id, future)

    verdicts: dict[str, SectionCreated | SectionRejected] = {}
    for events in answers:
        verdicts.update(section_verdicts(events))
    return _answer(show, [verdicts[spec.section_id] for spec in show.sections])


async def _send_buyer_limits(
    bus: CommandSender, show: ShowRequest, partitions: int, now_ms: int
) -> None:
    """Every ledger learns the limit before any of the show's sections exists.

    On each partition the limit then precedes, in log order, every hold request
    made after the show was answered.
    """
    limits = buyer_limit_commands(show, partitions, now_ms)
    await asyncio.gather(*(bus.send(key, [command]) for key, command in limits))


def _sent_here(outcomes: OutcomeSource, commands: list[tuple[str, CreateShow]]) -> bool:
    """Whether this instance sent every command of this request (it is a retry)."""
    return all(
        outcomes.outcome(c.command_id) is not None or outcomes.is_pending(c.command_id)
        for _, c in commands
    )


async def _refuse_if_show_exists(request: web.Request, show_id: str) -> None:
    """Raise 409 show-exists if the read model has any section of the show."""
    # TODO(limit): two concurrent creations of one show can both pass the read-model
    # check; per-section conflicts are still refused by the core
    view = await request.app[SHOW_SOURCE].view(show_id)
    if view.rows:
        existing = sorted(row.section_id for row in view.rows)
        raise HttpProblem(
            "show-exists",
            f"show {show_id} already has sections; nothing was sent",
            extensions={"existing_sections": existing},
        )


def _answer(
    show: ShowRequest, verdicts: list[SectionCreated | SectionRejected]
) -> web.Response:
    """201 if every section was created, else the refusal with each section's fate."""
    rejected = [v for v in verdicts if isinstance(v, SectionRejected)]
    sections = [_section_body(v) for v in verdicts]
    if rejected:
        names = ", ".join(v.section_id for v in rejected)
        raise HttpProblem(
            REJECTION_SLUGS[rejected[0].reason],
            f"not created: {names}",
            extensions={"sections": sections},
        )
    body = {"show_id": show.show_id, "sections": sections}
    location = {"Location": availability_location(show.show_id)}
    return json_response(body, status=201, headers=location)


def _section_body(verdict: SectionCreated | SectionRejected) -> dict[str, Any]:
    """The public view of one section's verdict."""
    if isinstance(verdict, SectionRejected):
        return {
            "section_id": verdict.section_id,
            "status": "rejected",
            "reason": str(verdict.reason),
        }
    return {
        "section_id": verdict.section_id,
        "status": "created",
        "kind": str(verdict.kind),
        "capacity": verdict.capacity,
        "hold_ttl_seconds": verdict.hold_ttl_seconds,
    }


def _pending(show_id: str) -> web.Response:
    """202: the commands are on the log, their outcomes not back yet."""
    headers = {
        "Location": availability_location(show_id),
        "Retry-After": str(PENDING_RETRY_AFTER_SECONDS),
    }
    return json_response({"show_id": show_id, "status": "pending"}, 202, headers)
