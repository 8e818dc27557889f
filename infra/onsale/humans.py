"""A human on a phone: solves the puzzle, polls as told, picks seats, pays.

A human picks adjacent free seats from the seat map (front rows first, with
some spread), tries again with a fresh look when they were taken, moves to
another section when one is sold out, and gives up after a few tries.
"""

from __future__ import annotations

import random
import time
from typing import Any, Final

from infra.onsale.client import Client
from infra.onsale.plan import GA_SECTION
from infra.onsale.visitors import (
    Sale,
    VisitorResult,
    checkout_and_pay,
    hold,
    join_room,
    wait_for_admission,
)

HOLD_TRIES: Final = 3


async def human(client: Client, sale: Sale, result: VisitorResult) -> None:
    """One human's whole sale; its result."""
    visitor = result.visitor
    headers = {"Device-Id": visitor.device_id, "User-Agent": "ticketing-app/1.0"}
    joined = await join_room(client, sale, result, headers)
    if joined is None:
        return
    token = await wait_for_admission(client, sale, result, headers, joined)
    if token is None:
        return

    headers = {**headers, "Admission-Token": token}
    rng = random.Random(visitor.buyer_id)
    held = await _hold_places(client, sale, result, headers, rng)
    if held is None:
        return
    await checkout_and_pay(client, sale, result, held, headers)


async def _hold_places(
    client: Client,
    sale: Sale,
    result: VisitorResult,
    headers: dict[str, str],
    rng: random.Random,
) -> dict[str, Any] | None:
    """Hold the wanted places, trying again and elsewhere; the hold or None."""
    visitor = result.visitor
    section = visitor.section_id
    started = time.perf_counter()
    for _ in range(HOLD_TRIES):
        body: dict[str, Any] = {"buyer_id": visitor.buyer_id}
        if sale.sections[section]:
            body.update(await _pick(client, sale, section, visitor.places, rng))
        else:
            body["quantity"] = visitor.places
        answer = await hold(client, sale, section, body, headers)
        if answer.status == 201:
            client.recorder.latency("hold", time.perf_counter() - started)
            result.held_at = time.time()
            result.hold_id = str(answer.body["hold_id"])
            result.held_places = int(answer.body.get("quantity", visitor.places))
            sale.progress["held"] += 1
            return answer.body
        result.outcome = f"hold:{answer.problem}"
        if answer.problem == "sold-out":
            section = _elsewhere(sale, section, rng)
        elif answer.problem != "seat-unavailable":
            return None
    return None


def _elsewhere(sale: Sale, section: str, rng: random.Random) -> str:
    others = [s for s in sale.sections if s != section]
    if not others:
        return section
    return (
        GA_SECTION
        if GA_SECTION in others and rng.random() < 0.5
        else rng.choice(others)
    )


async def _pick(
    client: Client, sale: Sale, section: str, places: int, rng: random.Random
) -> dict[str, Any]:
    """Adjacent free seats from the seat map, or a quantity if none fit."""
    path = f"/v1/shows/{sale.show_id}/sections/{section}/seats"
    started = time.perf_counter()
    answer = await client.retrying("GET", path, "seat-map", deadline=sale.deadline)
    client.recorder.latency("seat-map", time.perf_counter() - started)
    taken = {
        str(seat["seat_id"])
        for seat in answer.body.get("seats", [])
        if seat.get("status") != "free"
    }
    plan = sale.plan
    rows = list(range(plan.rows_per_section))
    # Front rows first, but people differ: a random start among the front half.
    start = rng.randrange(max(1, plan.rows_per_section // 2))
    for row in rows[start:] + rows[:start]:
        seats = _adjacent(row, plan.seats_per_row, places, taken, rng)
        if seats:
            return {"seat_ids": seats}
    return {"quantity": places}


def _adjacent(
    row: int, seats_per_row: int, places: int, taken: set[str], rng: random.Random
) -> list[str]:
    """``places`` free seats together in the row, from a random start; or []."""
    label = f"R{row + 1}"
    first = rng.randrange(max(1, seats_per_row - places + 1))
    for offset in range(seats_per_row):
        begin = (first + offset) % max(1, seats_per_row - places + 1)
        seats = [f"{label}-{begin + n + 1}" for n in range(places)]
        if not taken.intersection(seats):
            return seats
    return []
