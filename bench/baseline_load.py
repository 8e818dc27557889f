"""The closed-loop load every design gets: K clients share M buyers.

Each client takes the next buyer, sends one hold request for one place and waits
for its answer before taking another, until every buyer has asked or the time
limit passes. Latency is measured per request, from send to answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.baseline_stats import Workload

log = logging.getLogger(__name__)

# One request for one buyer: True when a hold was placed, False when refused.
HoldRequest = Callable[[int], Awaitable[bool]]


@dataclass
class LoadOutcome:
    """The answers the clients got."""

    attempted: int = 0
    placed: int = 0
    rejected: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_seconds: list[float] = field(default_factory=list)
    first_error: str = ""


async def drive(request: HoldRequest, workload: Workload) -> LoadOutcome:
    """Run ``workload.buyers`` requests with ``workload.clients`` at a time."""
    outcome = LoadOutcome()
    buyers = iter(range(workload.buyers))
    started = time.perf_counter()
    deadline = started + workload.time_limit_seconds

    async def client() -> None:
        for buyer in buyers:
            if time.perf_counter() > deadline:
                return
            outcome.attempted += 1
            sent = time.perf_counter()
            try:
                placed = await request(buyer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counted and reported below
                outcome.errors += 1
                outcome.first_error = outcome.first_error or repr(exc)
                continue
            outcome.latencies_seconds.append(time.perf_counter() - sent)
            if placed:
                outcome.placed += 1
            else:
                outcome.rejected += 1

    clients = [asyncio.create_task(client()) for _ in range(workload.clients)]
    try:
        # Requests that hang past the limit are cancelled and left unanswered.
        await asyncio.wait(clients, timeout=workload.time_limit_seconds + 30)
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    outcome.seconds = time.perf_counter() - started
    if outcome.errors:
        log.warning(
            "%d requests failed; first: %s", outcome.errors, outcome.first_error
        )
    return outcome
