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

import math
import time
from collections.abc import Callable, Sequence
from typing import Final

from commands.errors import InfrastructureError
from commands.model import Command
from gateway.ports import CommandSender
from infra.breaker import Breaker, BreakerState

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen", "GuardedSender"]


OPEN_SECONDS: Final = 3.0


class CircuitOpen(InfrastructureError):
    """The command log failed lately; nothing was sent."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"command log unavailable; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class CircuitBreaker(Breaker):
    """One failure opens it, one success closes it."""

    def __init__(
        self,
        open_seconds: float = OPEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("command-log", 1, open_seconds, clock)

    def refused(self, seconds_left: float) -> Exception:
        """Answered 503 with a Retry-After of whole seconds, at least 1."""
        return CircuitOpen(max(1, math.ceil(seconds_left)))


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
