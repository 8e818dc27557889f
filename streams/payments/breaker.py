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

import time
from collections.abc import Callable

from commands.errors import ProviderCircuitOpen
from infra.breaker import Breaker, BreakerState

__all__ = ["BreakerState", "ProviderBreaker"]


class ProviderBreaker(Breaker):
    """Opens after ``failure_threshold`` failures in a row; one probe when half-open."""

    def __init__(
        self,
        provider: str,
        failure_threshold: int = 5,
        open_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(f"provider-{provider}", failure_threshold, open_seconds, clock)
        self.provider = provider

    def refused(self, seconds_left: float) -> Exception:
        """A short wait at least, while another call probes."""
        return ProviderCircuitOpen(max(0.05, seconds_left))
