"""Token buckets as GCRA: one number per key, integer microseconds, exact.

A bucket of ``capacity`` tokens refilled at ``per_second`` is kept as its
*theoretical arrival time* (TAT): the moment the bucket would be full again. A
request is let in when ``TAT - now`` leaves room for one more token within the
burst tolerance, and moves TAT one emission interval on. With integers there is no
rounding drift at the boundaries, and a clock that jumps backwards only makes the
bucket look fuller (TAT is kept), so it never mints tokens; a jump forwards refills
at most ``capacity``.

``take`` is pure; ``LocalBuckets`` keeps TATs in this process (per IP, device,
account, and the global bucket in front of the command topic), and the shared
buckets keep them in the room store (``gateway.room_store``), compared and set.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

MICROS: Final = 1_000_000
MAX_LOCAL_KEYS: Final = 200_000


@dataclass(frozen=True, slots=True)
class Limit:
    """A bucket's shape: how many tokens it holds and how fast it refills."""

    capacity: int
    per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.per_second <= 0:
            raise ValueError("a bucket holds at least 1 token and refills")

    @property
    def interval_us(self) -> int:
        """Microseconds to refill one token."""
        return max(1, round(MICROS / self.per_second))

    @property
    def tolerance_us(self) -> int:
        """How far ahead of now the TAT may run: the burst beyond one token."""
        return (self.capacity - 1) * self.interval_us


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may pass, the bucket's next TAT, and when to retry."""

    allowed: bool
    tat_us: int
    retry_after_us: int = 0

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds for a Retry-After header; at least 1."""
        return max(1, math.ceil(self.retry_after_us / MICROS))


def take(limit: Limit, tat_us: int | None, now_us: int) -> Verdict:
    """Take one token from a bucket whose TAT is ``tat_us`` (None: full)."""
    tat = now_us if tat_us is None else max(tat_us, now_us)
    ahead = tat - now_us
    if ahead > limit.tolerance_us:
        return Verdict(False, tat, ahead - limit.tolerance_us)
    return Verdict(True, tat + limit.interval_us)


class LocalBuckets:
    """Buckets of one limit by key, in this process, least recent evicted.

    An evicted key starts full again; with ``MAX_LOCAL_KEYS`` keys that takes
    more distinct keys in one refill period than a real client population has.
    """

    def __init__(self, limit: Limit, max_keys: int = MAX_LOCAL_KEYS) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._tats: OrderedDict[str, int] = OrderedDict()

    def take(self, key: str, now_us: int) -> Verdict:
        """Take a token from the key's bucket; the state moves only if allowed."""
        verdict = take(self.limit, self._tats.get(key), now_us)
        if verdict.allowed:
            self._tats[key] = verdict.tat_us
            self._tats.move_to_end(key)
            if len(self._tats) > self._max_keys:
                self._tats.popitem(last=False)
        return verdict
