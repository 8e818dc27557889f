"""The command log's circuit breaker: open after a failure, probe, close."""

from __future__ import annotations

import orjson
import pytest

from gateway.breaker import BreakerState, CircuitBreaker, CircuitOpen
from gateway.testing import harness, serve
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, key, place


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_refuses_at_once_with_seconds_left_when_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(open_seconds=3.0, clock=clock)

    breaker.failed()
    clock.now += 0.5
    with pytest.raises(CircuitOpen) as caught:
        breaker.admit()

    assert breaker.state is BreakerState.OPEN
    assert caught.value.retry_after_seconds == 3


def test_breaker_lets_one_probe_through_when_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(open_seconds=3.0, clock=clock)
    breaker.failed()
    clock.now += 3.0

    probe = breaker.admit()
    with pytest.raises(CircuitOpen) as second:
        breaker.admit()

    assert breaker.state is BreakerState.HALF_OPEN
    assert probe is True
    assert second.value.retry_after_seconds == 1


def test_breaker_closes_when_the_probe_succeeds() -> None:
    clock = Clock()
    breaker = CircuitBreaker(open_seconds=3.0, clock=clock)
    breaker.failed()
    clock.now += 3.0
    breaker.admit()

    breaker.succeeded()

    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is False


def test_breaker_opens_again_from_now_when_the_probe_fails() -> None:
    clock = Clock()
    breaker = CircuitBreaker(open_seconds=3.0, clock=clock)
    breaker.failed()
    clock.now += 3.0
    breaker.admit()

    breaker.failed()
    clock.now += 2.9

    assert breaker.state is BreakerState.OPEN


def test_breaker_frees_the_probe_slot_when_the_probe_is_abandoned() -> None:
    clock = Clock()
    breaker = CircuitBreaker(open_seconds=3.0, clock=clock)
    breaker.failed()
    clock.now += 3.0
    probe = breaker.admit()

    breaker.abandoned(probe)

    assert breaker.admit() is True


async def test_holds_answer_503_at_once_without_sending_when_the_log_failed() -> None:
    clock = Clock()
    gateway = harness(place, clock=clock)
    gateway.bus.down = True

    async with serve(gateway.app) as client:
        first = await client.post(HOLD_PATH, json=GA_HOLD, headers=key("k1"))
        second = await client.post(HOLD_PATH, json=GA_HOLD, headers=key("k2"))
        body = orjson.loads(await second.read())
        attempts = gateway.bus.attempts
        gateway.bus.down = False
        clock.now += 3.0
        probe = await client.post(HOLD_PATH, json=GA_HOLD, headers=key("k3"))
        after = await client.post(HOLD_PATH, json=GA_HOLD, headers=key("k4"))

    assert (first.status, second.status) == (503, 503)
    assert second.headers["Retry-After"] == "3"
    assert body["type"] == "/problems/unavailable"
    assert attempts == 1
    assert (probe.status, after.status) == (201, 201)
    assert gateway.breaker.state is BreakerState.CLOSED
