"""The gateway serves its metrics: routes as templates, shedding by reason."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import REGISTRY, observe_pump
from gateway.testing import harness, serve
from gateway.waiting_room import RoomState


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_routes_by_template_and_shedding_by_reason() -> None:
    gateway = harness(gateway_ip_burst=1, gateway_ip_requests_per_second=0.001)
    route = {"route": "/v1/holds/{hold_id}", "method": "GET", "status": "429"}
    shed = {"status": "429", "reason": "rate-limited"}
    before = (
        _value("ticketing_gateway_requests_total", route),
        _value("ticketing_gateway_shed_total", shed),
    )

    async with serve(gateway.app) as client:
        await client.get("/v1/holds/h-1")
        limited = await client.get("/v1/holds/h-2")
        scraped = await client.get("/metrics")
        text = await scraped.text()

    assert limited.status == 429
    assert scraped.status == 200
    after = (
        _value("ticketing_gateway_requests_total", route),
        _value("ticketing_gateway_shed_total", shed),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    names = {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert {
        "ticketing_gateway_requests_total",
        "ticketing_gateway_request_duration_seconds_bucket",
        "ticketing_gateway_shed_total",
        "ticketing_gateway_queue_waiting",
        "ticketing_gateway_queue_admitted",
        "ticketing_gateway_breaker_open",
    } <= names
    assert "h-1" not in text and "h-2" not in text


def test_pump_eta_error_is_the_gap_between_assumed_and_achieved_outflow() -> None:
    # 1,000 early arrivals; ETAs assumed 100 per second, the pump let 50 through
    # in one second while people still waited: ETAs were off by half.
    before = RoomState(
        "s",
        0,
        100.0,
        mark=0.1,
        pumped_at_ms=1000,
        outflow_per_second=100.0,
        early_joins=1000,
    )
    after = RoomState(
        "s",
        0,
        100.0,
        mark=0.15,
        pumped_at_ms=2000,
        outflow_per_second=50.0,
        early_joins=1000,
    )
    total = "ticketing_gateway_queue_eta_error_ratio_sum"
    sum_before = REGISTRY.get_sample_value(total) or 0.0

    observe_pump(before, after)

    assert abs((REGISTRY.get_sample_value(total) or 0.0) - sum_before - 0.5) < 1e-9
