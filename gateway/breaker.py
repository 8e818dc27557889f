"""A circuit breaker in front of the command log, so an outage costs no waiting.

::

    closed ──a send fails──► open ──open_seconds pass──► half-open
      ▲                        ▲                             │ one probe
      └─────── a send succeeds ┴──────── the probe fails ────┘

While open, a send raises ``CircuitOpen`` at once, answered 503 with a Retry-After
of the seconds left. Half-open lets exactly one request probe the log while the
others are refused; its success closes the breaker, its failure opens it again. A
probe that is cancelled (the client left) proves nothing and frees the slot.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Final

from commands.errors import InfrastructureError
from commands.model import Command
from gateway.ports import CommandSender

logger = logging.getLogger(__name__)

OPEN_SECONDS: Final = 3.0


class CircuitOpen(InfrastructureError):
    """The command log failed lately; nothing was sent."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"command log unavailable; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class BreakerState(enum.StrEnum):
    """Where the breaker is (see the module's diagram)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts nothing: one failure opens it, one success closes it."""

    def __init__(
        self,
        open_seconds: float = OPEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_seconds = open_seconds
        self._clock = clock
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The current state, at the clock's time."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() < self._opened_at + self._open_seconds:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def admit(self) -> bool:
        """Let a send through (True if it is the half-open probe) or raise."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise CircuitOpen(self._retry_after_seconds())

    def succeeded(self) -> None:
        """A send was acknowledged: close."""
        if self._opened_at is not None:
            logger.info("command log breaker closed")
        self._opened_at, self._probing = None, False

    def failed(self) -> None:
        """A send failed: open (again) from now."""
        if self._opened_at is None:
            logger.warning("command log breaker opened")
        self._opened_at, self._probing = self._clock(), False

    def abandoned(self, probe: bool) -> None:
        """A send ended without telling whether the log works."""
        if probe:
            self._probing = False

    def _retry_after_seconds(self) -> int:
        """Whole seconds until a probe may run; at least 1."""
        assert self._opened_at is not None
        left = self._opened_at + self._open_seconds - self._clock()
        return max(1, math.ceil(left))


class GuardedSender:
    """A ``CommandSender`` that asks a breaker before sending."""

    def __init__(self, sender: CommandSender, breaker: CircuitBreaker) -> None:
        self._sender = sender
        self.breaker = breaker

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        """Send through the wrapped sender unless the breaker refuses."""
        probe = self.breaker.admit()
        try:
            await self._sender.send(key, commands)
        except InfrastructureError:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.abandoned(probe)
            raise
        self.breaker.succeeded()
