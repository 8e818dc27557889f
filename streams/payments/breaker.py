"""A circuit breaker per payment provider.

::

    closed ──failure_threshold failures in a row──► open ──open_seconds──► half-open
      ▲                                               ▲                       │
      └──────────── a call succeeds ──────────────────┴── the probe fails ────┘

While open, ``admit`` raises ``ProviderCircuitOpen`` with the seconds left, and
nothing is sent. Half-open lets exactly one call probe the provider; its success
closes the breaker, its failure opens it again. Unlike the command log's breaker
(``gateway.breaker``), one failure does not open it: providers fail single
requests routinely (a declined card is not even a failure here, see
``payments.retry``).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from commands.errors import ProviderCircuitOpen

logger = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    """Where the breaker is (see the module's diagram)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class ProviderBreaker:
    """Opens after ``failure_threshold`` failures in a row; one probe when half-open."""

    def __init__(
        self,
        provider: str,
        failure_threshold: int = 5,
        open_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.provider = provider
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.times_opened = 0

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
        raise ProviderCircuitOpen(self._seconds_left())

    def succeeded(self) -> None:
        """A call got an answer from the provider: close."""
        if self._opened_at is not None:
            logger.info("provider breaker closed", extra={"provider": self.provider})
        self._failures, self._opened_at, self._probing = 0, None, False

    def failed(self, probe: bool) -> None:
        """A call failed (timeout, 5xx): count it, open past the threshold."""
        self._failures += 1
        if probe or self._opened_at is not None:
            self._opened_at, self._probing = self._clock(), False
        elif self._failures >= self._threshold:
            self._opened_at = self._clock()
            self.times_opened += 1
            logger.warning("provider breaker opened", extra={"provider": self.provider})

    def abandoned(self, probe: bool) -> None:
        """A call ended without telling whether the provider works (cancelled)."""
        if probe:
            self._probing = False

    def _seconds_left(self) -> float:
        """Seconds until a probe may run; a short wait while another one probes."""
        assert self._opened_at is not None
        return max(0.05, self._opened_at + self._open_seconds - self._clock())
