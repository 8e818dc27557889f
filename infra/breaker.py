"""The circuit breaker both the gateway (command log) and payments (providers) use.

::

    closed ──failure_threshold failures in a row──► open ──open_seconds──► half-open
      ▲                                               ▲                       │
      └──────────── a call succeeds ──────────────────┴── the probe fails ────┘

While open, ``admit`` raises the subclass's refusal with the seconds left, and
nothing is sent. Half-open lets exactly one call probe; its success closes the
breaker, its failure opens it again. A probe that is cancelled (the client left)
proves nothing and frees the slot.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    """Where the breaker is (see the module's diagram)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """Opens after ``failure_threshold`` failures in a row; one probe when half-open."""

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.times_opened = 0

    def refused(self, seconds_left: float) -> Exception:
        """The error ``admit`` raises while the breaker is open."""
        raise NotImplementedError

    @property
    def state(self) -> BreakerState:
        """The current state, at the clock's time."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() < self._opened_at + self._open_seconds:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def admit(self) -> bool:
        """Let a call through (True if it is the half-open probe) or raise."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise self.refused(self.seconds_left())

    def succeeded(self) -> None:
        """A call got an answer: close."""
        if self._opened_at is not None:
            logger.info("breaker closed", extra={"breaker": self.name})
        self._failures, self._opened_at, self._probing = 0, None, False

    def failed(self, probe: bool = False) -> None:
        """A call failed: count it; open (again) from now past the threshold."""
        self._failures += 1
        if probe or self._opened_at is not None:
            self._opened_at, self._probing = self._clock(), False
        elif self._failures >= self._threshold:
            self._opened_at = self._clock()
            self.times_opened += 1
            logger.warning("breaker opened", extra={"breaker": self.name})

    def abandoned(self, probe: bool) -> None:
        """A call ended without telling whether the other side works."""
        if probe:
            self._probing = False

    def seconds_left(self) -> float:
        """Seconds until a probe may run (0 when not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._open_seconds - self._clock())
