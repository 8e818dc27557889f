"""Retries with jittered exponential backoff, behind a provider's breaker.

The delay before retry ``n`` (1-based) is drawn uniformly from
``[0, min(max_seconds, base_seconds * 2 ** (n - 1))]`` ("full jitter"), so many
workers that failed together do not come back together. Only ``ProviderUnavailable``
is retried; ``ProviderRejected`` ends at once. A refusal by the open breaker costs no
attempt: the call waits for the probe instead, until the caller's deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from commands.errors import (
    ProviderCircuitOpen,
    ProviderError,
    ProviderUnavailable,
)
from streams.payments import metrics
from streams.payments.breaker import ProviderBreaker

T = TypeVar("T")


class AttemptsExhausted(ProviderError):
    """Every allowed attempt failed while the provider answered others."""


class DeadlinePassed(ProviderError):
    """The call could not be made before the caller's deadline."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a provider call is tried."""

    max_attempts: int = 5
    base_seconds: float = 0.2
    max_seconds: float = 5.0

    def backoff_ceiling_seconds(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (1-based), before jitter."""
        if retry < 1:
            raise ValueError("retries count from 1")
        # Cap the exponent: 2 ** 1000 overflows a float multiplication.
        growth = float(2 ** min(retry - 1, 62))
        return min(self.max_seconds, self.base_seconds * growth)

    def backoff_seconds(self, retry: int, rng: random.Random) -> float:
        """The wait before retry ``retry``, jittered over its whole range."""
        return rng.uniform(0.0, self.backoff_ceiling_seconds(retry))


@dataclass
class Retrier:
    """Runs provider calls with a policy, a breaker, and injectable time."""

    policy: RetryPolicy
    breaker: ProviderBreaker
    rng: random.Random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time

    async def call(
        self, make_call: Callable[[], Awaitable[T]], deadline: float | None = None
    ) -> T:
        """The call's result; retried, waited for the breaker, up to ``deadline``.

        ``deadline`` is on ``clock``'s scale (epoch seconds by default).
        """
        failures = 0
        while True:
            if deadline is not None and self.clock() >= deadline:
                raise DeadlinePassed("the payment deadline passed before an answer")
            try:
                probe = self.breaker.admit()
            except ProviderCircuitOpen as exc:
                metrics.BREAKER_WAITS.inc()
                await self.sleep(exc.retry_after_seconds)
                continue

            started = time.perf_counter()
            try:
                result = await make_call()
            except ProviderUnavailable as exc:
                _count(metrics.UNAVAILABLE, started)
                self.breaker.failed(probe)
                if not probe:
                    failures += 1
                    if failures >= self.policy.max_attempts:
                        raise AttemptsExhausted(
                            f"{failures} attempts failed, last: {exc}"
                        ) from exc
                    metrics.RETRIES.inc()
                    await self.sleep(self.policy.backoff_seconds(failures, self.rng))
                continue
            except ProviderError:
                _count(metrics.REJECTED, started)
                self.breaker.succeeded()  # a refusal is an answer: the provider is up
                raise
            except BaseException:
                self.breaker.abandoned(probe)
                raise
            _count(metrics.OK, started)
            self.breaker.succeeded()
            return result


def _count(outcome: str, started: float) -> None:
    metrics.CALLS.labels(outcome).inc()
    metrics.CALL_DURATION.observe(time.perf_counter() - started)
