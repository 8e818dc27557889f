"""A steady, bounded sale over HTTP for fault tests: holds, checkouts, reads.

Buyers arrive at a fixed rate for a fixed time, each on one of a few GA
sections. Each buyer behaves like a mobile client: it places a hold, checks it
out (the payments worker and the simulated provider then charge it), and on a
503, a 429, a timeout or a lost connection it retries the same request with the
same idempotency key after the Retry-After it was given, until its own deadline.
A reader polls the availability of the show meanwhile and notes whether each
answer was fresh, stale (``Projection-Stale``) or refused.

Every outcome is stamped with the second it happened in (``Timeline``), so the
time to recover from a fault can be read off: from the moment the fault was
repaired to the first success, and to the first window whose success rate is
back at 80 % of the rate before the fault (``recovery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from gateway.testing import admission_headers
from infra.settings import Settings

RECOVERED_FRACTION: Final = 0.8
RATE_WINDOW_SECONDS: Final = 3.0
RETRY_AFTER_CAP_SECONDS: Final = 2.0
POLL_SECONDS: Final = 0.5

HOLD_OK: Final = "hold-ok"
CHECKOUT_OK: Final = "checkout-ok"
RETRIED: Final = "retried"
GAVE_UP: Final = "gave-up"
REFUSED: Final = "refused"
READ_FRESH: Final = "read-fresh"
READ_STALE: Final = "read-stale"
READ_REFUSED: Final = "read-refused"


@dataclass(frozen=True)
class LoadPlan:
    """Where and how hard the buyers come."""

    base_url: str
    show_id: str
    sections: Sequence[str]
    buyers_per_second: float = 3.0
    duration_seconds: float = 60.0
    buyer_deadline_seconds: float = 45.0
    request_timeout_seconds: float = 5.0
    read_every_seconds: float = 0.5


@dataclass
class Timeline:
    """Outcomes stamped with monotonic seconds since the load started."""

    started_at: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    stamps: list[tuple[float, str]] = field(default_factory=list)
    sent: list[tuple[float, str]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    held: list[str] = field(default_factory=list)
    checked_out: list[str] = field(default_factory=list)

    def now(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.started_at

    def note(self, kind: str, sent_at: float | None = None) -> None:
        """Record one outcome now; a success also with when its request left."""
        self.stamps.append((self.now(), kind))
        self.outcomes[kind] += 1
        if sent_at is not None:
            self.sent.append((sent_at, kind))

    def sent_times(self, kind: str) -> list[float]:
        """When the request of each success of a kind was sent, in order."""
        return sorted(t for t, k in self.sent if k == kind)

    def since_start(self, monotonic: float) -> float:
        """A monotonic instant in this timeline's seconds."""
        return monotonic - self.started_at

    def since_start_wall(self, epoch_seconds: float) -> float:
        """A wall-clock instant (a log timestamp) in this timeline's seconds."""
        return epoch_seconds - self.started_wall

    def times(self, kind: str) -> list[float]:
        """When each outcome of a kind happened, in order."""
        return sorted(t for t, k in self.stamps if k == kind)

    def per_second(self, kind: str) -> dict[int, int]:
        """How many outcomes of a kind happened in each whole second."""
        return dict(Counter(int(t) for t in self.times(kind)))


@dataclass(frozen=True)
class Recovery:
    """How a success series behaved around one fault (seconds; None: never)."""

    baseline_per_second: float
    during_per_second: float
    first_success_seconds: float | None
    rate_recovered_seconds: float | None

    def as_dict(self) -> dict[str, float | None]:
        """The figures, rounded, for a JSON report."""
        return {
            "baseline_per_second": round(self.baseline_per_second, 2),
            "during_fault_per_second": round(self.during_per_second, 2),
            "first_success_seconds": _round(self.first_success_seconds),
            "rate_recovered_seconds": _round(self.rate_recovered_seconds),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def recovery(
    times: Sequence[float],
    baseline: tuple[float, float],
    fault: tuple[float, float],
    until: float,
    first_after: Sequence[float] | None = None,
) -> Recovery:
    """The recovery of a series of success times after a fault.

    ``baseline`` and ``fault`` are (start, end) in the series' clock; the fault
    ends when it was repaired. The first success is the first time at or after
    the repair in ``first_after`` (default ``times``): for HTTP successes, when
    the request that succeeded was sent, so an answer decided before the fault
    and delivered after it does not count. The rate is back once a window of
    ``RATE_WINDOW_SECONDS`` starting at or after the repair holds at least
    ``RECOVERED_FRACTION`` of the baseline rate; windows are tried every 0.1 s up
    to ``until``.
    """
    start, end = baseline
    rate = sum(start <= t < end for t in times) / max(end - start, 1e-9)
    down, repaired = fault
    during = sum(down <= t < repaired for t in times) / max(repaired - down, 1e-9)
    after = [t for t in times if t >= repaired]
    sent = sorted(t for t in (first_after or times) if t >= repaired)
    first = sent[0] - repaired if sent else None
    wanted = RECOVERED_FRACTION * rate * RATE_WINDOW_SECONDS
    back = None
    steps = int(max(0.0, until - RATE_WINDOW_SECONDS - repaired) / 0.1) + 1
    for step in range(steps):
        window = repaired + step * 0.1
        if sum(window <= t < window + RATE_WINDOW_SECONDS for t in after) >= wanted:
            back = window - repaired
            break
    return Recovery(rate, during, first, back)


class Buyers:
    """Runs the plan's buyers and reader against the gateway, noting outcomes."""

    def __init__(self, plan: LoadPlan, settings: Settings, timeline: Timeline):
        self.plan = plan
        self.settings = settings
        self.timeline = timeline
        self.run_id = uuid.uuid4().hex[:6]
        self.stopped = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop_arrivals(self) -> None:
        """From any thread: no new buyers; those under way finish."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.stopped.set)

    async def run(self) -> None:
        """Buyers at the plan's rate for its duration, then wait for the last."""
        self._loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.plan.request_timeout_seconds)
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            reader = asyncio.create_task(self._read(http))
            buyers = []
            gap = 1.0 / self.plan.buyers_per_second
            count = int(self.plan.duration_seconds * self.plan.buyers_per_second)
            for index in range(count):
                if self.stopped.is_set():
                    break
                buyers.append(asyncio.create_task(self._buyer(http, index)))
                due = max(0.0, (index + 1) * gap - self.timeline.now())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopped.wait(), due)
            await asyncio.gather(*buyers)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _buyer(self, http: aiohttp.ClientSession, index: int) -> None:
        """Hold, then check out, retrying each with its key until the deadline."""
        plan = self.plan
        buyer = f"fb-{self.run_id}-{index}"
        section = plan.sections[index % len(plan.sections)]
        headers = admission_headers(
            plan.show_id, buyer, f"dev-{buyer}", settings=self.settings
        )
        deadline = time.monotonic() + plan.buyer_deadline_seconds
        hold_url = f"{plan.base_url}/v1/shows/{plan.show_id}/sections/{section}/holds"
        body = {"buyer_id": buyer, "quantity": 1}
        held = await self._until_done(http, hold_url, body, headers, deadline)
        if held is None:
            return
        payload, sent_at = held
        self.timeline.note(HOLD_OK, sent_at)
        hold_id = str(payload["hold_id"])
        self.timeline.held.append(hold_id)
        checkout_url = f"{plan.base_url}/v1/holds/{hold_id}/checkout"
        body = {"buyer_id": buyer}
        done = await self._until_done(http, checkout_url, body, headers, deadline)
        if done is not None:
            self.timeline.note(CHECKOUT_OK, done[1])
            self.timeline.checked_out.append(hold_id)

    async def _until_done(
        self,
        http: aiohttp.ClientSession,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        deadline: float,
    ) -> tuple[dict[str, Any], float] | None:
        """POST with one key until answered for good: (body, when that try left).

        None if refused or given up.
        """
        sent = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        while time.monotonic() < deadline:
            wait = POLL_SECONDS
            sent_at = self.timeline.now()
            try:
                async with http.post(url, json=body, headers=sent) as answer:
                    payload = await answer.json(content_type=None)
                    if answer.status in (200, 201):
                        return dict(payload), sent_at
                    if not _retryable(answer.status, payload):
                        self.timeline.note(f"{REFUSED}:{_problem(payload)}")
                        return None
                    if answer.status != 202:
                        self.timeline.note(f"{answer.status}:{_problem(payload)}")
                    wait = _retry_after(answer)
            except (TimeoutError, aiohttp.ClientError, ValueError):
                pass
            self.timeline.note(RETRIED)
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        self.timeline.note(GAVE_UP)
        return None

    async def _read(self, http: aiohttp.ClientSession) -> None:
        """Poll the show's availability and note how fresh each answer was."""
        url = f"{self.plan.base_url}/v1/shows/{self.plan.show_id}/availability"
        while True:
            try:
                async with http.get(url) as answer:
                    await answer.read()
                    if answer.status != 200:
                        self.timeline.note(READ_REFUSED)
                    elif answer.headers.get("Projection-Stale") == "true":
                        self.timeline.note(READ_STALE)
                    else:
                        self.timeline.note(READ_FRESH)
            except (TimeoutError, aiohttp.ClientError):
                self.timeline.note(READ_REFUSED)
            await asyncio.sleep(self.plan.read_every_seconds)


def _retryable(status: int, payload: Any) -> bool:
    """Pending, shed, down, or the same key still being decided: ask again."""
    in_flight = status == 409 and _problem(payload) == "request-in-flight"
    return status in (202, 429, 503) or in_flight


def _problem(payload: Any) -> str:
    """The slug of a problem+json answer's type, or "?"."""
    if not isinstance(payload, dict):
        return "?"
    return str(payload.get("type", "?")).rsplit("/", 1)[-1]


def _retry_after(answer: aiohttp.ClientResponse) -> float:
    """The answer's Retry-After in seconds, capped like an impatient app."""
    try:
        wanted = float(answer.headers.get("Retry-After", POLL_SECONDS))
    except ValueError:
        wanted = POLL_SECONDS
    return min(max(wanted, 0.1), RETRY_AFTER_CAP_SECONDS)
