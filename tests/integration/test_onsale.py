"""The whole slice: gateway, Kafka, agent, projection, payments, provider and
Cassandra, driven over HTTP by humans and bots, reported from the log."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from infra.onsale import OnsalePlan, run_sale
from infra.onsale.plan import SIZES
from infra.settings import Settings
from tests.integration.support import settings_env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_onsale_sells_no_place_twice_and_charges_no_one_twice_when_a_crowd_pays(
    isolated_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = dataclasses.replace(
        isolated_settings,
        gateway_port=_free_port(),
        provider_port=_free_port(),
        payments_group=f"{isolated_settings.topic_prefix}-payments",
    )
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TICKETING_GATEWAY_PORT", str(settings.gateway_port))
    monkeypatch.setenv("TICKETING_PROVIDER_PORT", str(settings.provider_port))
    monkeypatch.setenv("TICKETING_PAYMENTS_GROUP", settings.payments_group)
    for metrics in ("PROJECTION", "PAYMENTS", "AUDIT"):
        monkeypatch.setenv(f"TICKETING_{metrics}_METRICS_PORT", str(_free_port()))
    plan: OnsalePlan = dataclasses.replace(SIZES["tiny"], buyers=160)
    out = tmp_path_factory.mktemp("onsale")

    sale = run_sale(plan, settings, out)

    report = sale.report
    assert report["problems"] == []
    assert report["oversold"] == 0
    assert report["paid_without_tickets"] == {"log": 0, "provider": 0}
    assert report["double_charges"] == 0
    assert 0 < report["sold"]["places"] <= plan.places
    assert report["sold"]["holds_placed"] > 0
    assert (
        report["payments"]["succeeded"]
        == report["sold"]["holds"] + (report["payments"]["refunded"])
    )
    assert report["answers"]["bot"]["bot-no-token"] == {"admission-required": plan.bots}
    assert report["stolen_tokens_accepted"] == 0
    assert report["fairness"]["purchases_ranked"] > 0
    assert report["latency_seconds"]["hold"]["count"] > 0
    assert sale.chart_path.stat().st_size > 10_000
    assert sale.report_path.exists() and sale.text_path.read_text().startswith("==")
