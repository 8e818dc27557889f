"""The crowd: every visitor arrives at its moment of the spike, within bounds.

Visitors are asyncio tasks over one HTTP session (at most ``max_connections``
connections); each waits for its arrival time, then runs its journey until done
or until the sale's deadline cuts it off. A line of progress is printed every
few seconds.

TODO(limit): one process drives every visitor, on the same cores as the system.
When its loop lags (the progress line's "driver lag", and the report's
``driver_lag_seconds_max``) beyond about a second, its latencies include its own
delay and the spike is flatter than planned; split the crowd over several
processes before reading latencies of such a run.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Final

import aiohttp

from infra.onsale.bots import bot
from infra.onsale.client import Client
from infra.onsale.humans import human
from infra.onsale.plan import Visitor
from infra.onsale.visitors import Sale, VisitorResult

PROGRESS_EVERY_SECONDS: Final = 5.0
REQUEST_TIMEOUT_SECONDS: Final = 20.0


async def run_crowd(
    base_url: str, sale: Sale, visitors: list[Visitor]
) -> list[VisitorResult]:
    """Every visitor's result, in the order of ``visitors``."""
    connector = aiohttp.TCPConnector(limit=sale.plan.max_connections)
    # A phone's timeout runs from its own connection: waiting for one of the
    # driver's pooled connections is not counted (and is none while there are
    # as many connections as visitors).
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=REQUEST_TIMEOUT_SECONDS,
        sock_read=REQUEST_TIMEOUT_SECONDS,
    )
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        rng = random.Random(sale.plan.seed)
        humans = Client(session, base_url, sale.recorder, "human", rng)
        bots = Client(session, base_url, sale.recorder, "bot", rng)
        ticker = asyncio.create_task(_progress(sale, len(visitors)))
        try:
            return list(
                await asyncio.gather(
                    *(_visit(humans, bots, sale, visitor) for visitor in visitors)
                )
            )
        finally:
            ticker.cancel()


async def _visit(
    humans: Client, bots: Client, sale: Sale, visitor: Visitor
) -> VisitorResult:
    """Arrive on time, run the journey, stop at the deadline."""
    arrival = sale.opens_at + visitor.arrival_offset_seconds
    await asyncio.sleep(max(0.0, arrival - time.time()))
    sale.progress["arrived"] += 1
    result = VisitorResult(visitor, outcome="arrived")
    journey = bot(bots, sale, result) if visitor.is_bot else human(humans, sale, result)
    try:
        await asyncio.wait_for(journey, timeout=max(0.1, sale.left()))
    except TimeoutError:
        result.outcome = f"cut-off after {result.outcome}"
    sale.progress["done"] += 1
    return result


async def _progress(sale: Sale, total: int) -> None:
    """One line every few seconds while visitors are at work, with how late the
    line came: the driver's own loop lag, which delays every visitor too."""
    started = time.monotonic()
    while True:
        asked = time.monotonic()
        await asyncio.sleep(PROGRESS_EVERY_SECONDS)
        lag = time.monotonic() - asked - PROGRESS_EVERY_SECONDS
        sale.driver_lag_seconds = max(sale.driver_lag_seconds, lag)
        p = sale.progress
        queue = p["joined"] - p["admitted"]
        print(
            f"  {time.monotonic() - started:5.0f} s  arrived {p['arrived']}/{total}"
            f"  in queue {queue}  admitted {p['admitted']}  held {p['held']}"
            f" (bots {p['bot held']})  checked out {p['checked out']}"
            f"  bought {p['bought']}  done {p['done']}  (driver lag {lag:.1f} s)",
            flush=True,
        )
