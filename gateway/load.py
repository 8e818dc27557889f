"""How far behind the write path is, as this gateway instance sees it.

Every hold or checkout this instance sends tells how long its outcome took (a
reply that never came counts as the whole reply timeout). ``LagMeter`` keeps an
exponentially weighted mean of those delays; with no answer for a while it
decays back to zero, so a quiet system is not taken for a slow one. The waiting
room's outflow shrinks as the lag grows (``waiting_room.lag_aware_rate``) and
past the shedding bound commands are refused with 503 and Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

SMOOTHING: Final = 0.2
STALE_SECONDS: Final = 10.0


class LagMeter:
    """A smoothed outcome delay of the commands this instance sent."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lag_seconds = 0.0
        self._observed_at: float | None = None

    def observe(self, delay_seconds: float) -> None:
        """One command's delay from send to outcome (or to giving up)."""
        if self._observed_at is None:
            self._lag_seconds = delay_seconds
        else:
            self._lag_seconds += SMOOTHING * (delay_seconds - self._lag_seconds)
        self._observed_at = self._clock()

    @property
    def lag_seconds(self) -> float:
        """The current estimate; it fades to 0 over ``STALE_SECONDS`` of silence."""
        if self._observed_at is None:
            return 0.0
        quiet = self._clock() - self._observed_at
        return self._lag_seconds * max(0.0, 1 - quiet / STALE_SECONDS)
