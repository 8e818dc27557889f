"""The waiting room's arithmetic: queue order, the admitted-up-to mark, outflow.

Every queue ticket has a *queue key* on one axis; the room admits every ticket
whose key is below its *mark*::

    0 ─── early arrivals, shuffled ─── 1 ── 1 s after opening ── 2 ── ... ──►
          key = rank in [0, 1)              key = 1 + seconds after opening

- A ticket that joined before the sale opened gets the key ``rank``: a secret,
  uniform function of its id (HMAC), so the early crowd is shuffled fairly and any
  gateway instance computes the same order without sharing anything but the mark.
- A ticket that joined after opening gets ``1 + (joined_at - opens_at) / 1000``:
  arrival order, to the millisecond.

The mark moves as a leaky bucket: ``advance`` lets ``rate × elapsed`` people
through, converting people into axis length with the join counts (early joins,
and late joins per second since opening), and never past the newest possible
arrival (so an idle room saves up no burst). Positions and ETAs are estimates
from the same counts. Nothing here does I/O; times are epoch milliseconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from gateway.signing import keyed_digest

EARLY_SLOT: Final = -1
"""The join-count slot of every arrival before opening."""
MIN_POLL_SECONDS: Final = 1
MAX_POLL_SECONDS: Final = 30
MAX_PUMP_GAP_MS: Final = 2_000
"""The longest time one advance counts, whatever passed since the last one."""
OUTFLOW_SMOOTHING: Final = 0.3
"""Weight of the newest measurement in the smoothed outflow."""


@dataclass(frozen=True, slots=True)
class RoomState:
    """One show's waiting room as every gateway instance shares it."""

    show_id: str
    opens_at_ms: int
    admit_per_second: float
    """The configured outflow, matched to the write path's capacity."""
    mark: float = 0.0
    pumped_at_ms: int = 0
    """When the mark was last advanced (0: never)."""
    outflow_per_second: float = 0.0
    """Measured people admitted per second while people were waiting."""
    early_joins: int = 0
    late_joins: Mapping[int, int] = field(default_factory=dict)
    """Joins per whole second since opening."""


def rank(secret: bytes, show_id: str, ticket_id: str) -> float:
    """A ticket's place among the early arrivals: uniform in [0, 1)."""
    digest = keyed_digest(secret, "rank", show_id, ticket_id)
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_early(joined_at_ms: int, opens_at_ms: int) -> bool:
    """Whether a join came before the sale opened."""
    return joined_at_ms < opens_at_ms


def join_slot(joined_at_ms: int, opens_at_ms: int) -> int:
    """The join-count slot of an arrival: early, or its second after opening."""
    if is_early(joined_at_ms, opens_at_ms):
        return EARLY_SLOT
    return (joined_at_ms - opens_at_ms) // 1000


def queue_key(
    secret: bytes, show_id: str, ticket_id: str, joined_at_ms: int, opens_at_ms: int
) -> float:
    """Where a ticket stands on the room's axis (see the module's diagram)."""
    if is_early(joined_at_ms, opens_at_ms):
        return rank(secret, show_id, ticket_id)
    return 1.0 + (joined_at_ms - opens_at_ms) / 1000.0


def newest_key(room: RoomState, now_ms: int) -> float:
    """The key of someone joining now: the mark never passes it."""
    return 1.0 + max(0, now_ms - room.opens_at_ms) / 1000.0


def people_between(room: RoomState, low: float, high: float) -> float:
    """Estimated people with a key in [low, high), from the join counts."""
    if high <= low:
        return 0.0
    people = room.early_joins * _overlap(low, high, 0.0, 1.0)
    first, last = math.floor(low - 1.0), math.floor(high - 1.0)
    for slot, joins in room.late_joins.items():
        if first <= slot <= last:
            people += joins * _overlap(low, high, 1.0 + slot, 2.0 + slot)
    return people


def _overlap(low: float, high: float, start: float, end: float) -> float:
    return max(0.0, min(high, end) - max(low, start))


def advance(
    room: RoomState,
    now_ms: int,
    rate_per_second: float,
    max_gap_ms: int = MAX_PUMP_GAP_MS,
) -> RoomState:
    """The room after letting ``rate × elapsed`` people through since the last pump.

    Before opening nothing moves. A clock that went backwards lets nobody through
    (and keeps the later pump time), so a jump cannot mint admissions; a gap
    between pumps counts at most ``max_gap_ms``, so an unpumped while saves up no
    burst either.
    """
    if now_ms < room.opens_at_ms:
        return room
    since_ms = max(room.pumped_at_ms, room.opens_at_ms)
    if now_ms <= since_ms:
        return room
    elapsed_seconds = min(now_ms - since_ms, max_gap_ms) / 1000.0
    budget = rate_per_second * elapsed_seconds
    mark, left = _walk(room, room.mark, newest_key(room, now_ms), budget)

    # Measure outflow only while people waited: an empty room says nothing of it.
    outflow = room.outflow_per_second
    if left <= 1e-9 and budget > 0:
        measured = budget / elapsed_seconds
        outflow = measured if outflow == 0 else _smooth(outflow, measured)
    return replace(room, mark=mark, pumped_at_ms=now_ms, outflow_per_second=outflow)


def _smooth(old: float, new: float) -> float:
    return (1 - OUTFLOW_SMOOTHING) * old + OUTFLOW_SMOOTHING * new


def _walk(
    room: RoomState, mark: float, cap: float, budget: float
) -> tuple[float, float]:
    """Move the mark through the segments until the budget or the cap runs out."""
    slots = sorted(slot for slot, joins in room.late_joins.items() if joins > 0)
    x, left = mark, budget
    while left > 0 and x < cap:
        start, end, joins = _segment(room, slots, x)
        if joins == 0:  # nobody waits from x on
            return cap, left
        if start > x:  # nobody in the gap before the next people
            x = min(start, cap)
            continue
        end = min(end, cap)
        people = joins * (end - x)
        if people >= left:
            return x + left / joins, 0.0
        x, left = end, left - people
    return x, left


def _segment(room: RoomState, slots: list[int], x: float) -> tuple[float, float, int]:
    """The segment holding x or the next one with people: (start, end, joins)."""
    if x < 1.0:
        if room.early_joins:
            return 0.0, 1.0, room.early_joins
        x = 1.0
    index = bisect.bisect_left(slots, math.floor(x - 1.0))
    if index == len(slots):
        return x, math.inf, 0
    slot = slots[index]
    return 1.0 + slot, 2.0 + slot, room.late_joins[slot]


def position(room: RoomState, key: float) -> int:
    """Estimated people ahead of a ticket; 0 once admitted."""
    if key < room.mark:
        return 0
    return math.ceil(people_between(room, room.mark, key))


def is_admitted(room: RoomState, key: float) -> bool:
    """Whether the mark has passed the ticket."""
    return key < room.mark


def eta_seconds(room: RoomState, ahead: int) -> int:
    """Seconds until a ticket with ``ahead`` people before it is let in."""
    outflow = room.outflow_per_second or room.admit_per_second
    if ahead <= 0:
        return 0
    if outflow <= 0:
        return MAX_POLL_SECONDS * 10
    return math.ceil(ahead / outflow)


def poll_after_seconds(room: RoomState, now_ms: int, eta: int) -> int:
    """When a client should ask again: soon near the door, rarely far from it."""
    if now_ms < room.opens_at_ms:
        wait = (room.opens_at_ms - now_ms) / 1000.0 / 2
    else:
        wait = eta / 4
    return int(min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, math.ceil(wait))))


def lag_aware_rate(
    admit_per_second: float,
    lag_seconds: float,
    target_lag_seconds: float,
    shed_lag_seconds: float,
    min_fraction: float = 0.1,
) -> float:
    """The outflow for the write path's current lag: full up to the target lag,
    shrinking linearly to ``min_fraction`` of it at the shedding bound."""
    if lag_seconds <= target_lag_seconds:
        return admit_per_second
    if lag_seconds >= shed_lag_seconds or shed_lag_seconds <= target_lag_seconds:
        return admit_per_second * min_fraction
    share = (lag_seconds - target_lag_seconds) / (shed_lag_seconds - target_lag_seconds)
    return admit_per_second * (1 - share * (1 - min_fraction))
