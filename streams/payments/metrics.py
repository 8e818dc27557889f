"""The payments worker's metrics: provider calls, retries, breaker, dead letters.

Served by the payments worker on ``payments_metrics_port``. Calls count every
attempt at the provider (charges, refunds, polls) by outcome: ``ok``,
``rejected`` (the provider answered no) or ``unavailable`` (timeout, 5xx,
connection); an attempt refused by the open breaker is no call.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from infra.metrics import LATENCY_BUCKETS_SECONDS
from streams.payments.breaker import BreakerState, ProviderBreaker

OK: Final = "ok"
REJECTED: Final = "rejected"
UNAVAILABLE: Final = "unavailable"

REGISTRY = CollectorRegistry()

CALLS = Counter(
    "ticketing_payments_provider_calls",
    "Attempts at the payment provider, by outcome (ok, rejected, unavailable).",
    ["outcome"],
    registry=REGISTRY,
)
CALL_DURATION = Histogram(
    "ticketing_payments_provider_call_duration_seconds",
    "Time one attempt at the provider took, whatever its outcome.",
    buckets=LATENCY_BUCKETS_SECONDS,
    registry=REGISTRY,
)
RETRIES = Counter(
    "ticketing_payments_retries",
    "Provider calls tried again after a failed attempt.",
    registry=REGISTRY,
)
BREAKER_OPEN = Gauge(
    "ticketing_payments_breaker_open",
    "1 while the provider's circuit breaker refuses calls (open), else 0.",
    registry=REGISTRY,
)
BREAKER_WAITS = Counter(
    "ticketing_payments_breaker_waits",
    "Times a call found the provider's breaker open and had to wait.",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "ticketing_payments_dead_letters",
    "Payment records sent to dead letters, by reason.",
    ["reason"],
    registry=REGISTRY,
)


def watch_breaker(breaker: ProviderBreaker) -> None:
    """Read the breaker's state at every scrape."""
    BREAKER_OPEN.set_function(lambda: float(breaker.state is BreakerState.OPEN))
