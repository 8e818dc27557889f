"""What a visitor does and what it got: the steps every visitor shares.

A visitor arrives, asks for a proof-of-work puzzle, solves it and joins the
waiting room, polls its status, takes its admission token, holds places, checks
out and waits for its payment to end in tickets. Humans (``humans.py``) poll
when told and retry like a mobile app; bots (``bots.py``) cheat where they can.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.pow import solve
from infra.onsale.client import Answer, Client, Recorder
from infra.onsale.plan import OnsalePlan, Visitor
from infra.onsale.stats import EtaSample

PAYMENT_POLL_SECONDS: Final = 1.5
FOLLOW_POLLS: Final = 60
MADE_UP_SOLUTION: Final = "0"


@dataclass
class VisitorResult:
    """One visitor's path through the sale (times are epoch seconds)."""

    visitor: Visitor
    outcome: str = "not-arrived"
    joined_at: float | None = None
    queue_ticket: str | None = None
    admitted_at: float | None = None
    held_at: float | None = None
    hold_id: str | None = None
    held_places: int = 0
    checked_out_at: float | None = None
    sold_at: float | None = None
    bought_places: int = 0
    eta_samples: list[EtaSample] = field(default_factory=list)


@dataclass
class Sale:
    """The sale as the visitors share it: show, opening, bounds and records."""

    show_id: str
    plan: OnsalePlan
    opens_at: float
    deadline: float
    recorder: Recorder
    sections: dict[str, bool]
    """Section id -> reserved."""
    progress: Counter[str] = field(default_factory=Counter)
    positions: list[tuple[float, int]] = field(default_factory=list)
    """(time, position) of every status answer: the room's view of the queue."""
    token_pool: list[tuple[str, str]] = field(default_factory=list)
    """Admission tokens bots collected, with the buyer each was given to."""
    driver_lag_seconds: float = 0.0
    """The largest delay of the driver's own event loop seen."""

    @property
    def room(self) -> str:
        """Path of the show's waiting room."""
        return f"/v1/shows/{self.show_id}/waiting-room"

    def holds_path(self, section_id: str) -> str:
        """Path of a section's holds."""
        return f"/v1/shows/{self.show_id}/sections/{section_id}/holds"

    def left(self) -> float:
        """Seconds until the visitors' deadline."""
        return self.deadline - time.time()


def new_key() -> str:
    """A fresh idempotency key."""
    return uuid.uuid4().hex


async def join_room(
    client: Client,
    sale: Sale,
    result: VisitorResult,
    headers: dict[str, str],
    pow_budget_bits: int | None = None,
) -> dict[str, Any] | None:
    """Solve the puzzle (or, over ``pow_budget_bits``, make a solution up) and
    join; the join answer, or ``None`` with the outcome set."""
    buyer = result.visitor.buyer_id
    started = time.perf_counter()
    asked = await client.retrying(
        "POST", f"{sale.room}/challenge", "challenge", headers, {"buyer_id": buyer}
    )
    if asked.status != 201:
        result.outcome = f"challenge:{asked.problem}"
        return None
    challenge, bits = str(asked.body["challenge"]), int(asked.body["difficulty_bits"])
    solving = time.perf_counter()
    if pow_budget_bits is not None and bits > pow_budget_bits:
        solution = MADE_UP_SOLUTION
    else:
        solution = solve(challenge, bits)
    solved = time.perf_counter()
    body = {"buyer_id": buyer, "challenge": challenge, "solution": solution}
    joined = await client.retrying("POST", f"{sale.room}/join", "join", headers, body)
    if joined.status != 201:
        result.outcome = f"join:{joined.problem}"
        return None
    if client.kind == "human":
        client.recorder.latency(
            "join", time.perf_counter() - started - (solved - solving)
        )
    result.joined_at = time.time()
    result.queue_ticket = str(joined.body["queue_ticket"])
    sale.progress["joined"] += 1
    return joined.body


ADMISSION_REFUSED = "admission:device-limit-reached"
"""Outcome of a visitor whose device was admitted as its most buyers already."""


async def wait_for_admission(
    client: Client,
    sale: Sale,
    result: VisitorResult,
    headers: dict[str, str],
    joined: dict[str, Any],
    poll_every_seconds: float | None = None,
) -> str | None:
    """Poll the status until admitted, then take the token; ``None`` if never.

    Humans wait what each answer suggests (``poll_after_seconds`` or
    ``Retry-After``) and send its ETag; with ``poll_every_seconds`` a visitor
    polls at that pace instead and sends no ETag.
    """
    ticket_headers = {**headers, "Queue-Ticket": str(joined["queue_ticket"])}
    state, wait = str(joined["state"]), float(joined["poll_after_seconds"])
    etag: str | None = None
    samples: list[EtaSample] = []
    eta = joined.get("eta_seconds")
    if state == "waiting" and isinstance(eta, int | float):
        samples.append(EtaSample(time.time(), float(eta), None))
    while sale.left() > 0:
        if state == "admitted":
            token = await _admission(client, sale, result, ticket_headers, samples)
            if token is not None:
                return token
            if result.outcome == ADMISSION_REFUSED:
                return None
        await asyncio.sleep(min(poll_every_seconds or wait, max(0.0, sale.left())))
        conditional = dict(ticket_headers)
        if etag is not None and poll_every_seconds is None:
            conditional["If-None-Match"] = etag
        started = time.perf_counter()
        answer = await client.send("GET", f"{sale.room}/status", "poll", conditional)
        if client.kind == "human":
            client.recorder.latency("poll", time.perf_counter() - started)
        state, wait, etag = _read_status(sale, answer, state, wait, etag, samples)
    result.outcome = "not-admitted"
    return None


def _read_status(
    sale: Sale,
    answer: Answer,
    state: str,
    wait: float,
    etag: str | None,
    samples: list[EtaSample],
) -> tuple[str, float, str | None]:
    """The state, next wait and ETag after one status answer."""
    if answer.status == 304:
        return state, answer.retry_after_seconds or wait, etag
    if answer.status != 200:
        return state, answer.retry_after_seconds or 1.0, etag
    body, now = answer.body, time.time()
    position, eta = body.get("position"), body.get("eta_seconds")
    if isinstance(position, int):
        sale.positions.append((now, position))
    if body.get("state") == "waiting" and isinstance(eta, int | float):
        samples.append(EtaSample(now, float(eta), None))
    return str(body["state"]), float(body["poll_after_seconds"]), answer.etag


async def _admission(
    client: Client,
    sale: Sale,
    result: VisitorResult,
    headers: dict[str, str],
    samples: list[EtaSample],
) -> str | None:
    started = time.perf_counter()
    answer = await client.retrying(
        "POST", f"{sale.room}/admission", "admission", headers, deadline=sale.deadline
    )
    if answer.status == 403 and answer.problem == "device-limit-reached":
        # Final: this device was admitted as its most buyers; asking again
        # changes nothing (a farm's extra accounts end here).
        result.outcome = ADMISSION_REFUSED
        return None
    if answer.status != 201:
        return None
    if client.kind == "human":
        client.recorder.latency("admission", time.perf_counter() - started)
    # TODO(limit): admission is seen at the first poll that finds it, so the
    # actual wait (and the ETA error) is overstated by up to one poll interval
    # (1 s near the door, a quarter of the ETA further back).
    result.admitted_at = now = time.time()
    result.eta_samples = [EtaSample(s.at, s.predicted_seconds, now) for s in samples]
    sale.progress["admitted"] += 1
    return str(answer.body["admission_token"])


async def follow(client: Client, answer: Answer, step: str, sale: Sale) -> Answer:
    """A 202's outcome: poll its ``Location`` as told until it is known."""
    location = answer.location or f"/v1/holds/{answer.body.get('hold_id', '')}"
    for _ in range(FOLLOW_POLLS):
        if answer.status not in (202, 404) or sale.left() <= 0:
            return answer
        await asyncio.sleep(answer.retry_after_seconds or 0.5)
        answer = await client.send("GET", location, step)
    return answer


async def hold(
    client: Client,
    sale: Sale,
    section_id: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> Answer:
    """One hold request as a mobile app sends it, 202s followed to the end."""
    sent = {**headers, "Idempotency-Key": new_key()}
    path = sale.holds_path(section_id)
    answer = await client.retrying("POST", path, "hold", sent, body, sale.deadline)
    if answer.status == 202:
        answer = await follow(client, answer, "hold-poll", sale)
    return answer


async def checkout_and_pay(
    client: Client,
    sale: Sale,
    result: VisitorResult,
    held: dict[str, Any],
    headers: dict[str, str],
) -> None:
    """Check the hold out, then wait for the payment to end it: sold or not."""
    hold_id = str(held["hold_id"])
    sent = {**headers, "Idempotency-Key": new_key()}
    body = {"buyer_id": result.visitor.buyer_id}
    started = time.perf_counter()
    path = f"/v1/holds/{hold_id}/checkout"
    answer = await client.retrying("POST", path, "checkout", sent, body, sale.deadline)
    if answer.status == 202:
        answer = await follow(client, answer, "checkout-poll", sale)
    if answer.status not in (200, 201):
        result.outcome = f"checkout:{answer.problem}"
        return
    if client.kind == "human":
        client.recorder.latency("checkout", time.perf_counter() - started)
    result.checked_out_at = time.time()
    sale.progress["checked out"] += 1
    await _await_payment(client, sale, result, hold_id, answer)


async def _await_payment(
    client: Client, sale: Sale, result: VisitorResult, hold_id: str, answer: Answer
) -> None:
    status = str(answer.body.get("status", ""))
    while status in ("payment_pending", "held", "pending", "") and sale.left() > 0:
        await asyncio.sleep(answer.retry_after_seconds or PAYMENT_POLL_SECONDS)
        answer = await client.send("GET", f"/v1/holds/{hold_id}", "payment-poll")
        status = str(answer.body.get("status", ""))
    if status == "sold":
        result.sold_at = time.time()
        result.bought_places = int(answer.body.get("quantity", 0))
        result.outcome = "bought"
        sale.progress["bought"] += 1
        if client.kind == "human" and result.checked_out_at is not None:
            client.recorder.latency(
                "payment-seen", result.sold_at - result.checked_out_at
            )
    elif status in ("released", "expired"):
        result.outcome = f"payment:{status}"
    else:
        result.outcome = "payment:unknown"
