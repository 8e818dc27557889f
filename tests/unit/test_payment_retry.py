"""The retry loop: transient failures retried, refusals not, the breaker waited for."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest

from commands.errors import ProviderRejected, ProviderUnavailable
from streams.payments.breaker import BreakerState, ProviderBreaker
from streams.payments.retry import (
    AttemptsExhausted,
    DeadlinePassed,
    Retrier,
    RetryPolicy,
)


class FakeTime:
    """A clock and a sleep that only move the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def retrier(time: FakeTime, max_attempts: int = 4, threshold: int = 100) -> Retrier:
    return Retrier(
        policy=RetryPolicy(max_attempts=max_attempts, base_seconds=0.5, max_seconds=4),
        breaker=ProviderBreaker("sim", threshold, open_seconds=10, clock=time.clock),
        rng=random.Random(1),
        sleep=time.sleep,
        clock=time.clock,
    )


def calls(*answers: Exception | str) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A call that raises or returns each answer in turn (the last one forever)."""
    made = [0]

    async def call() -> str:
        answer = answers[min(made[0], len(answers) - 1)]
        made[0] += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    return call, made


async def test_call_returns_answer_when_transient_failures_end() -> None:
    time = FakeTime()
    call, made = calls(ProviderUnavailable("503"), ProviderUnavailable("503"), "paid")

    assert await retrier(time).call(call) == "paid"
    assert made[0] == 3
    assert len(time.sleeps) == 2
    assert all(0 <= s <= 4 for s in time.sleeps)


async def test_call_gives_up_after_max_attempts_when_failures_persist() -> None:
    time = FakeTime()
    call, made = calls(ProviderUnavailable("timeout"))

    with pytest.raises(AttemptsExhausted):
        await retrier(time, max_attempts=4).call(call)
    assert made[0] == 4


async def test_call_is_not_retried_when_the_provider_refuses() -> None:
    time = FakeTime()
    call, made = calls(ProviderRejected("400"), "paid")
    breaker_user = retrier(time)

    with pytest.raises(ProviderRejected):
        await breaker_user.call(call)
    assert made[0] == 1
    assert breaker_user.breaker.state is BreakerState.CLOSED


async def test_call_waits_for_the_breaker_instead_of_spending_attempts_when_open() -> (
    None
):
    time = FakeTime()
    outage = [ProviderUnavailable("503")] * 12
    call, made = calls(*outage, "paid")
    worker = retrier(time, max_attempts=3, threshold=2)

    assert await worker.call(call) == "paid"
    # Two failures opened it; then only half-open probes were sent, ten seconds apart.
    assert made[0] == 13
    assert worker.breaker.state is BreakerState.CLOSED
    assert worker.breaker.times_opened == 1


async def test_call_ends_when_the_deadline_passes_while_the_provider_is_down() -> None:
    time = FakeTime()
    call, made = calls(ProviderUnavailable("503"))
    worker = retrier(time, max_attempts=3, threshold=1)

    with pytest.raises(DeadlinePassed):
        await worker.call(call, deadline=time.now + 60)
    assert 1 <= made[0] <= 8
    assert time.now >= 1060
