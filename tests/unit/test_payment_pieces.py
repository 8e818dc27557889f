"""Pure pieces of payments: backoff, breaker, signatures and the dedup window."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.errors import ProviderCircuitOpen, WebhookRefused
from streams.payments.breaker import BreakerState, ProviderBreaker
from streams.payments.dedup import DedupWindow
from streams.payments.retry import RetryPolicy
from streams.payments.signing import sign, signature, verify

SECRET = b"whsec-test"
NOW = 1_800_000_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- backoff -----------------------------------------------------------------------


@given(
    retry=st.integers(1, 10_000),
    base=st.floats(0.001, 10.0),
    cap=st.floats(0.001, 60.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_within_its_capped_exponential_range_when_jittered(
    retry: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_seconds=base, max_seconds=cap)

    delay = policy.backoff_seconds(retry, random.Random(seed))

    assert 0.0 <= delay <= policy.backoff_ceiling_seconds(retry) <= cap
    assert policy.backoff_ceiling_seconds(retry) <= base * 2 ** min(retry - 1, 62)


@given(retry=st.integers(1, 200))
def test_backoff_ceiling_never_shrinks_when_retries_go_on(retry: int) -> None:
    policy = RetryPolicy(base_seconds=0.2, max_seconds=5.0)

    assert policy.backoff_ceiling_seconds(retry) <= policy.backoff_ceiling_seconds(
        retry + 1
    )


def test_backoff_spreads_workers_apart_when_they_failed_together() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=8.0)
    rng = random.Random(7)

    delays = {round(policy.backoff_seconds(4, rng), 6) for _ in range(50)}

    assert len(delays) == 50
    assert max(delays) <= 8.0


def test_backoff_refuses_retry_zero_when_asked() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().backoff_ceiling_seconds(0)


# --- breaker -----------------------------------------------------------------------


def test_breaker_opens_after_threshold_failures_in_a_row_when_closed() -> None:
    clock = Clock()
    breaker = ProviderBreaker("sim", failure_threshold=3, open_seconds=5, clock=clock)

    for _ in range(2):
        breaker.failed(breaker.admit())
    assert breaker.state is BreakerState.CLOSED
    breaker.failed(breaker.admit())

    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ProviderCircuitOpen) as info:
        breaker.admit()
    assert info.value.retry_after_seconds == pytest.approx(5.0)


def test_breaker_counts_only_failures_in_a_row_when_calls_succeed_between() -> None:
    breaker = ProviderBreaker("sim", failure_threshold=2, clock=Clock())

    for _ in range(10):
        breaker.failed(breaker.admit())
        breaker.succeeded()

    assert breaker.state is BreakerState.CLOSED


def test_breaker_lets_one_probe_through_when_half_open() -> None:
    clock = Clock()
    breaker = ProviderBreaker("sim", failure_threshold=1, open_seconds=5, clock=clock)
    breaker.failed(breaker.admit())
    clock.now = 5.0

    assert breaker.admit() is True
    with pytest.raises(ProviderCircuitOpen):
        breaker.admit()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is False


def test_breaker_opens_again_when_the_probe_fails() -> None:
    clock = Clock()
    breaker = ProviderBreaker("sim", failure_threshold=1, open_seconds=5, clock=clock)
    breaker.failed(breaker.admit())
    clock.now = 6.0

    breaker.failed(breaker.admit())

    assert breaker.state is BreakerState.OPEN
    clock.now = 10.9
    assert breaker.state is BreakerState.OPEN
    clock.now = 11.0
    assert breaker.state is BreakerState.HALF_OPEN


def test_breaker_frees_the_probe_when_it_is_abandoned() -> None:
    clock = Clock()
    breaker = ProviderBreaker("sim", failure_threshold=1, open_seconds=1, clock=clock)
    breaker.failed(breaker.admit())
    clock.now = 1.0

    breaker.abandoned(breaker.admit())

    assert breaker.admit() is True


# --- signatures --------------------------------------------------------------------


@given(body=st.binary(max_size=256), skew=st.integers(-300, 300))
def test_verify_accepts_own_signature_when_within_tolerance(
    body: bytes, skew: int
) -> None:
    header = sign(SECRET, NOW, body)

    assert verify(SECRET, header, body, NOW + skew, 300) == NOW


@given(body=st.binary(min_size=1, max_size=256), flip=st.integers(0, 255))
def test_verify_refuses_body_when_one_byte_changed(body: bytes, flip: int) -> None:
    header = sign(SECRET, NOW, body)
    changed = bytes([body[0] ^ (flip or 1)]) + body[1:]

    with pytest.raises(WebhookRefused) as info:
        verify(SECRET, header, changed, NOW, 300)
    assert info.value.reason == "signature_mismatch"


@given(skew=st.integers(301, 10**9), sign_of_skew=st.sampled_from([-1, 1]))
def test_verify_refuses_replay_when_signed_time_is_outside_tolerance(
    skew: int, sign_of_skew: int
) -> None:
    header = sign(SECRET, NOW, b"{}")

    with pytest.raises(WebhookRefused) as info:
        verify(SECRET, header, b"{}", NOW + sign_of_skew * skew, 300)
    assert info.value.reason == "timestamp_outside_tolerance"


def test_verify_refuses_signature_when_made_with_another_secret() -> None:
    header = sign(b"forger", NOW, b"{}")

    with pytest.raises(WebhookRefused):
        verify(SECRET, header, b"{}", NOW, 300)


def test_verify_refuses_restamped_signature_when_time_was_changed() -> None:
    old = signature(SECRET, NOW - 3600, b"{}")

    with pytest.raises(WebhookRefused) as info:
        verify(SECRET, f"t={NOW},v1={old}", b"{}", NOW, 300)
    assert info.value.reason == "signature_mismatch"


def test_verify_accepts_any_listed_signature_when_keys_rotate() -> None:
    new = signature(SECRET, NOW, b"{}")
    header = f"t={NOW},v1={signature(b'old-secret', NOW, b'{}')},v1={new}"

    assert verify(SECRET, header, b"{}", NOW, 300) == NOW


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("v1=abc", "malformed_signature"),
        (f"t={NOW}", "malformed_signature"),
        ("t=soon,v1=abc", "malformed_signature"),
        (f"t=-{NOW},v1=abc", "malformed_signature"),
    ],
)
def test_verify_refuses_header_when_malformed(header: str | None, reason: str) -> None:
    with pytest.raises(WebhookRefused) as info:
        verify(SECRET, header, b"{}", NOW, 300)
    assert info.value.reason == reason


# --- dedup window ------------------------------------------------------------------


def test_window_knows_an_id_when_added_within_ttl() -> None:
    clock = Clock()
    window = DedupWindow(max_ids=10, ttl_seconds=60, clock=clock)
    window.add("evt_1")
    clock.now = 59.9

    assert window.seen("evt_1")
    assert not window.seen("evt_2")


def test_window_forgets_an_id_when_its_ttl_passed() -> None:
    clock = Clock()
    window = DedupWindow(max_ids=10, ttl_seconds=60, clock=clock)
    window.add("evt_1")
    clock.now = 60.0

    assert not window.seen("evt_1")
    assert len(window) == 0


@given(ids=st.lists(st.text(min_size=1, max_size=4), max_size=200))
def test_window_stays_bounded_and_keeps_the_newest_when_full(ids: list[str]) -> None:
    window = DedupWindow(max_ids=16, ttl_seconds=3600, clock=Clock())

    for item_id in ids:
        window.add(item_id)

    assert len(window) <= 16
    if ids:
        assert window.seen(ids[-1])
    newest = list(dict.fromkeys(reversed(ids)))[:16]
    assert all(window.seen(item_id) for item_id in newest)
