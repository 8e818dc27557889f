"""Bounded, jittered exponential backoff and a once-per-outage health log.

The projection worker never exits on a transient infrastructure failure: it waits
and tries again. ``Backoff`` says how long to wait (seconds, growing from
``initial_seconds`` to ``max_seconds``, each delay drawn uniformly from its upper
half so that many workers do not retry in step). ``Health`` logs one WARNING when
a dependency starts failing and one INFO when it works again, never a line per
retry.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Final

logger = logging.getLogger(__name__)

INITIAL_BACKOFF_SECONDS: Final = 0.2
MAX_BACKOFF_SECONDS: Final = 5.0


class Backoff:
    """Delays of ``initial * 2**n`` seconds, capped, with equal jitter."""

    def __init__(
        self,
        initial_seconds: float = INITIAL_BACKOFF_SECONDS,
        max_seconds: float = MAX_BACKOFF_SECONDS,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self._rand = rand
        self._attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds; grows until reset."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2.0**self._attempt)
        if ceiling < self.max_seconds:
            self._attempt += 1
        return ceiling / 2.0 + self._rand() * ceiling / 2.0

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self._attempt = 0


class Health:
    """Whether one dependency works; logs only the changes between the two states."""

    def __init__(
        self, dependency: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.dependency = dependency
        self.failures = 0
        """Failed attempts in the current outage (0 when healthy)."""
        self.outages = 0
        """Outages seen since start."""
        self._clock = clock
        self._since = 0.0

    @property
    def degraded(self) -> bool:
        """Whether the last attempt failed."""
        return self.failures > 0

    def failed(self, action: str, exc: BaseException) -> None:
        """Count a failed attempt; log a WARNING if it starts an outage."""
        if self.failures == 0:
            self.outages += 1
            self._since = self._clock()
            logger.warning(
                "projection degraded: %s failing, retrying with backoff",
                self.dependency,
                extra={
                    "dependency": self.dependency,
                    "action": action,
                    "error": str(exc),
                },
            )
        self.failures += 1

    def succeeded(self) -> None:
        """Note a success; log an INFO if it ends an outage."""
        if self.failures == 0:
            return
        logger.info(
            "projection recovered: %s works again",
            self.dependency,
            extra={
                "dependency": self.dependency,
                "failed_attempts": self.failures,
                "outage_seconds": round(self._clock() - self._since, 3),
            },
        )
        self.failures = 0
