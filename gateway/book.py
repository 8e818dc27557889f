"""The loop-side record of command outcomes: waiting futures and recent events.

Callers ``expect`` a command id before they send the command, so no outcome can slip
past them; a bounded LRU keeps recent outcomes by command id for retries and
``GET /v1/holds/{id}``, plus the later events (checkout, release, expiry, sale) of
the holds it keeps. Commands this instance sent and has no outcome for yet are
remembered for ``pending_seconds``. Everything here runs on the event loop only.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

from commands.model import (
    CheckoutStarted,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    SectionCreated,
    SectionRejected,
    TicketsSold,
)
from gateway.ports import Settled

RECENT_OUTCOMES: Final = 100_000
PENDING_MEMORY_SECONDS: Final = 60.0
LaterHoldEvent = HoldExpired | HoldReleased | CheckoutStarted | TicketsSold


def hold_verdict(events: Sequence[Event]) -> HoldPlaced | HoldRejected | None:
    """The event that answers a PlaceHold, if it arrived."""
    for event in events:
        if isinstance(event, HoldPlaced | HoldRejected):
            return event
    return None


def has_hold_verdict(events: Sequence[Event]) -> bool:
    """Whether a PlaceHold has been answered."""
    return hold_verdict(events) is not None


def section_verdicts(
    events: Sequence[Event],
) -> dict[str, SectionCreated | SectionRejected]:
    """The first SectionCreated or SectionRejected of each section.

    A command id names one request's content, so the first verdict answers it; a
    later one comes from sending the same command again and must not replace it.
    """
    verdicts: dict[str, SectionCreated | SectionRejected] = {}
    for event in events:
        if isinstance(event, SectionCreated | SectionRejected):
            verdicts.setdefault(event.section_id, event)
    return verdicts


class OutcomeBook:
    """Futures waiting on command ids, and the recent outcomes; loop thread only."""

    def __init__(
        self,
        capacity: int = RECENT_OUTCOMES,
        pending_seconds: float = PENDING_MEMORY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = capacity
        self._pending_seconds = pending_seconds
        self._clock = clock
        self._recent: OrderedDict[str, list[Event]] = OrderedDict()
        self._later: dict[str, list[Event]] = {}
        self._sent: OrderedDict[str, float] = OrderedDict()
        self._claims: dict[str, str] = {}
        self._first_digests: OrderedDict[str, str] = OrderedDict()
        self._waiting: dict[str, list[tuple[asyncio.Future[list[Event]], Settled]]] = {}

    def expect(
        self, command_id: str, is_settled: Settled | None = None
    ) -> asyncio.Future[list[Event]]:
        """A future of the command's events, already resolved if they are known."""
        settled = is_settled or has_hold_verdict
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        known = self.outcome(command_id)
        if known is not None and settled(known):
            future.set_result(known)
            return future
        self._waiting.setdefault(command_id, []).append((future, settled))
        return future

    def forget(
        self, command_id: str, future: asyncio.Future[list[Event]] | None = None
    ) -> None:
        """Stop waiting for one future of a command id, or for all of them."""
        waiting = self._waiting.pop(command_id, [])
        kept = [(f, s) for f, s in waiting if future is not None and f is not future]
        if kept:
            self._waiting[command_id] = kept

    def outcome(self, command_id: str) -> list[Event] | None:
        """The events recently seen for a command id, if any."""
        events = self._recent.get(command_id)
        if events is not None:
            self._recent.move_to_end(command_id)
            return list(events)
        return None

    def hold_events(self, hold_id: str) -> list[Event] | None:
        """A recent hold's events: its placing command's, then later ones, in order."""
        placed = self.outcome(hold_id)
        if placed is None:
            return None
        return placed + self._later.get(hold_id, [])

    def mark_sent(self, command_id: str) -> None:
        """Remember for a while that this instance sent a command, until answered."""
        self._sent.pop(command_id, None)
        self._sent[command_id] = self._clock() + self._pending_seconds
        while len(self._sent) > self._capacity:
            self._sent.popitem(last=False)

    def claim(self, command_id: str, request_digest: str) -> str | None:
        """Claim a command id for one request at work; an earlier claim's digest.

        ``None`` means the claim is this request's; release it when done.
        """
        earlier = self._claims.get(command_id)
        if earlier is None:
            self._claims[command_id] = request_digest
            if command_id not in self._first_digests:
                self._first_digests[command_id] = request_digest
                while len(self._first_digests) > self._capacity:
                    self._first_digests.popitem(last=False)
        return earlier

    def first_digest(self, command_id: str) -> str | None:
        """The digest of the first request that claimed a command id here, if kept."""
        return self._first_digests.get(command_id)

    def release(self, command_id: str) -> None:
        """End the claim on a command id."""
        self._claims.pop(command_id, None)

    def is_pending(self, command_id: str) -> bool:
        """Whether this instance sent the command lately and saw no event of it."""
        deadline = self._sent.get(command_id)
        if deadline is None:
            return False
        if deadline <= self._clock():
            del self._sent[command_id]
            return False
        return True

    def settle(self, batch: dict[str, list[Event]]) -> None:
        """Record new events by command id and resolve the waiters they answer."""
        for command_id, events in batch.items():
            self._sent.pop(command_id, None)
            self._note_later(command_id, events)
            known = self._remember(command_id, events)
            waiting = self._waiting.pop(command_id, None)
            if not waiting:
                continue
            still = [(f, s) for f, s in waiting if not f.done() and not s(known)]
            for future, settled in waiting:
                if not future.done() and settled(known):
                    future.set_result(list(known))
            if still:
                self._waiting[command_id] = still

    def _remember(self, command_id: str, events: list[Event]) -> list[Event]:
        """Append events to a command's outcome, evicting the least recent."""
        known = self._recent.pop(command_id, [])
        known.extend(events)
        self._recent[command_id] = known
        while len(self._recent) > self._capacity:
            evicted, _ = self._recent.popitem(last=False)
            self._later.pop(evicted, None)
        return known

    def _note_later(self, command_id: str, events: list[Event]) -> None:
        """File events of holds this book keeps that other commands caused."""
        for event in events:
            if not isinstance(event, LaterHoldEvent) or event.hold_id == command_id:
                continue
            if event.hold_id in self._recent:
                self._later.setdefault(event.hold_id, []).append(event)
