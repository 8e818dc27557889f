"""The on-sale's report and verdict: built from the log, the provider and the
visitors, unsound for any broken promise, and drawn into a chart."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

import pytest

from infra.onsale import report
from infra.onsale.chart import write_chart
from infra.onsale.client import Recorder
from infra.onsale.job import refuse_if_port_taken
from infra.onsale.plan import (
    SIZES,
    OnsalePlan,
    Visitor,
    add_arguments,
    crowd,
    plan_from_args,
    show_document,
)
from infra.onsale.sale_log import SaleLog, Sold
from infra.onsale.stats import EtaSample
from infra.onsale.text import render
from infra.onsale.visitors import VisitorResult
from infra.processes import ProcessFailed

OPENS_AT = 1_000.0
PLAN = OnsalePlan(buyers=4, bot_share=0.25, spike_before_seconds=1.0)


def _visitor(buyer_id: str, is_bot: bool = False) -> Visitor:
    return Visitor(buyer_id, f"d-{buyer_id}", is_bot, 0.0, "floor", 2)


def _result(buyer_id: str, hold_id: str | None, key: float) -> VisitorResult:
    result = VisitorResult(_visitor(buyer_id, buyer_id.startswith("bot")))
    result.outcome = "bought" if hold_id else "hold:sold-out"
    result.queue_ticket = str(key)
    result.joined_at = OPENS_AT - 0.5
    result.admitted_at = OPENS_AT + key
    result.hold_id = hold_id
    result.eta_samples = [EtaSample(OPENS_AT, 2.0, OPENS_AT + key)]
    return result


def _log() -> SaleLog:
    log = SaleLog()
    log.ledger.holds_placed = 3
    for index, (hold, buyer) in enumerate(
        (("h1", "human-1"), ("h2", "human-2"), ("h3", "bot-0"))
    ):
        placed = OPENS_AT + 1 + index
        log.placed_by_hold[hold] = placed
        log.checkout_at[hold] = placed + 1
        log.sold[hold] = Sold(hold, buyer, 2, placed + 3)
        log.paid.add(hold)
    return log


def _payment(hold: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "idempotency_key": hold,
        "status": status,
        "refund_id": None,
        "metadata": {"show_id": "s", "hold_id": hold},
    }


def _inputs(log: SaleLog, payments: list[dict[str, Any]]) -> report.SaleInputs:
    recorder = Recorder()
    recorder.requests.update({"human": 90, "bot": 10})
    recorder.latency("hold", 0.2)
    results = [
        _result("human-1", "h1", 1.0),
        _result("human-2", "h2", 2.0),
        _result("human-3", None, 3.0),
        _result("bot-0", "h3", 0.5),
    ]
    return report.SaleInputs(
        show_id="s",
        plan=PLAN,
        opens_at=OPENS_AT,
        results=results,
        recorder=recorder,
        sale_log=log,
        provider_state={
            "payments": payments,
            "charged": {p["idempotency_key"]: 1 for p in payments},
        },
        positions=[(OPENS_AT + 0.5, 3)],
        queue_key=lambda result: float(result.queue_ticket or 0),
        durations_seconds={"visitors": 5.0},
        load_before=(1.0, 1.0, 1.0),
    )


def test_sale_is_sound_when_every_charge_ended_in_tickets_once() -> None:
    built = report.build(
        _inputs(_log(), [_payment("h1"), _payment("h2"), _payment("h3")])
    )

    assert built["problems"] == []
    assert built["sold"]["places"] == 6
    assert built["paid_without_tickets"] == {"log": 0, "provider": 0}
    assert built["double_charges"] == 0


def test_fairness_ranks_humans_queue_position_against_log_order() -> None:
    built = report.build(_inputs(_log(), []))

    fairness = built["fairness"]
    assert fairness["spearman_queue_vs_purchase"] == 1.0
    assert fairness["purchases_ranked"] == 2
    assert fairness["admissions_ranked"] == 3
    assert fairness["bots"] == {"traffic": 0.1, "sessions": 0.25, "tickets": 1 / 3}


def test_sale_is_unsound_when_a_paid_hold_has_neither_tickets_nor_refund() -> None:
    log = _log()
    log.paid.add("h4")

    built = report.build(_inputs(log, [_payment("h4")]))

    assert built["paid_without_tickets"] == {"log": 1, "provider": 1}
    assert built["problems"] == [
        "paid without tickets: 1 in the log, 1 charged at the provider"
    ]


def test_sale_is_unsound_when_the_provider_charged_a_hold_twice() -> None:
    twice = [_payment("h1"), {**_payment("h1"), "idempotency_key": "other-key"}]

    built = report.build(_inputs(_log(), twice))

    assert built["double_charges"] == 1
    assert built["problems"] == ["1 double charges"]


def test_sale_is_unsound_when_places_were_oversold() -> None:
    log = _log()
    log.ledger.oversold = 2

    built = report.build(_inputs(log, []))

    assert built["problems"] == ["2 places oversold"]


def test_sale_is_unsound_when_a_visitor_ended_with_no_outcome() -> None:
    inputs = _inputs(_log(), [])
    inputs.results[2].outcome = "arrived"

    built = report.build(inputs)

    assert built["problems"] == ["1 visitors ended with no outcome"]


def test_report_text_names_every_promise_and_chart_is_a_png(tmp_path: Path) -> None:
    built = report.build(_inputs(_log(), [_payment("h1")]))

    text = render(built)
    path = write_chart(built, tmp_path / "timeline.png")

    for line in ("OVERSOLD", "PAID WITHOUT TICKETS", "DOUBLE CHARGES", "Spearman"):
        assert line in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_stadium_size_is_twenty_thousand_places_mostly_reserved() -> None:
    stadium = SIZES["stadium"]

    document = show_document("s", stadium)

    kinds = [section["kind"] for section in document["sections"]]
    assert stadium.places == 20_000
    assert stadium.reserved_places > stadium.ga_capacity
    assert kinds.count("general_admission") == 1
    assert stadium.buyers > stadium.places


def test_crowd_arrives_in_a_spike_around_the_opening_with_a_share_of_bots() -> None:
    visitors = crowd(SIZES["default"])

    offsets = [v.arrival_offset_seconds for v in visitors]
    bots = [v for v in visitors if v.is_bot]
    assert len(visitors) == SIZES["default"].buyers
    assert len(bots) == round(0.1 * len(visitors))
    assert min(offsets) >= -2.0 and max(offsets) <= 4.0
    assert len({v.device_id for v in bots}) < len(bots)


def test_flags_change_the_named_size() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    plan = plan_from_args(
        parser.parse_args(
            ["--size", "stadium", "--buyers", "30000", "--provider-decline-rate", "0.1"]
        )
    )

    assert plan.buyers == 30_000
    assert plan.places == 20_000
    assert plan.provider.decline_rate == 0.1


def test_onsale_refuses_to_start_when_the_gateway_port_is_taken() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        with pytest.raises(ProcessFailed, match="TICKETING_GATEWAY_PORT"):
            refuse_if_port_taken(
                "127.0.0.1", listener.getsockname()[1], "TICKETING_GATEWAY_PORT"
            )
