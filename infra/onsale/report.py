"""The on-sale report: one JSON document, its text, and what makes a sale unsound.

Sources, each named in the text: the event log (sold, oversold, paid without
tickets, timelines of holds and sales), the simulated provider's records
(charges, refunds), and what the visitors saw (answers, latencies, queue
waits, ETAs). Queue position is a ticket's place on the room's axis, computed
with the room's secret by the same function the gateway uses, so it is exact
rather than read back from polls.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from infra.onsale import stats
from infra.onsale.client import Recorder
from infra.onsale.plan import OnsalePlan
from infra.onsale.sale_log import SaleLog
from infra.onsale.visitors import VisitorResult

STEPS: Final = (
    "join",
    "poll",
    "admission",
    "seat-map",
    "hold",
    "checkout",
    "payment-to-sold",
    "payment-seen",
)
ETA_BUCKET_SECONDS: Final = 5.0
MAX_TIMELINE_SECONDS: Final = 7_200


@dataclass(frozen=True)
class SaleInputs:
    """Everything one on-sale produced, gathered for the report."""

    show_id: str
    plan: OnsalePlan
    opens_at: float
    results: list[VisitorResult]
    recorder: Recorder
    sale_log: SaleLog
    provider_state: dict[str, Any]
    positions: list[tuple[float, int]]
    queue_key: Callable[[VisitorResult], float | None]
    durations_seconds: dict[str, float]
    load_before: tuple[float, float, float]
    stolen_tokens_accepted: int = 0
    driver_lag_seconds_max: float = 0.0


def build(inputs: SaleInputs) -> dict[str, Any]:
    """The report as one JSON-ready document."""
    log, plan = inputs.sale_log, inputs.plan
    bought = _places_by_class(log)
    provider = provider_figures(inputs.provider_state, inputs.show_id, log)
    report: dict[str, Any] = {
        "show_id": inputs.show_id,
        "plan": asdict(plan),
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": list(inputs.load_before),
            "load_after": list(os.getloadavg()),
            "driver_lag_seconds_max": round(inputs.driver_lag_seconds_max, 2),
        },
        "places": plan.places,
        "visitors": {"humans": plan.humans, "bots": plan.bots},
        "outcomes": _outcomes(inputs.results),
        "cut_off": sum(r.outcome.startswith("cut-off") for r in inputs.results),
        "without_outcome": sum(
            r.outcome in ("arrived", "not-arrived") for r in inputs.results
        ),
        "sold": {
            "places": log.places_sold,
            "holds": len(log.sold),
            "places_by_class": dict(bought),
            "holds_placed": log.ledger.holds_placed,
            "rejected_by_reason": dict(log.ledger.rejected_by_reason),
        },
        "oversold": log.ledger.oversold,
        "sold_twice": log.ledger.sold_twice,
        "sold_without_hold": log.ledger.sold_without_hold,
        "paid_without_tickets": {
            "log": len(log.paid_without_tickets()),
            "provider": provider["charged_without_tickets"],
        },
        "double_charges": provider["double_charges"],
        "payments": provider,
        "fairness": fairness(inputs),
        "answers": _answers(inputs.recorder),
        "retries": dict(inputs.recorder.retries),
        "stolen_tokens_accepted": inputs.stolen_tokens_accepted,
        "latency_seconds": _latencies(inputs.recorder, log),
        "eta_accuracy": asdict(stats.eta_accuracy(_eta_samples(inputs.results))),
        "timeline": timeline(inputs),
        "durations_seconds": inputs.durations_seconds,
    }
    report["problems"] = problems(report)
    return report


def _places_by_class(log: SaleLog) -> Counter[str]:
    places: Counter[str] = Counter()
    for sold in log.sold.values():
        places["bot" if sold.buyer_id.startswith("bot-") else "human"] += sold.quantity
    return places


def _outcomes(results: list[VisitorResult]) -> dict[str, dict[str, int]]:
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        found["bot" if result.visitor.is_bot else "human"][result.outcome] += 1
    return {kind: dict(counts.most_common()) for kind, counts in found.items()}


def _answers(recorder: Recorder) -> dict[str, dict[str, dict[str, int]]]:
    found: dict[str, dict[str, dict[str, int]]] = {}
    for (kind, step, label), count in sorted(recorder.answers.items()):
        found.setdefault(kind, {}).setdefault(step, {})[label] = count
    return found


def provider_figures(
    state: dict[str, Any], show_id: str, log: SaleLog
) -> dict[str, Any]:
    """The provider's records of this show beside the log's."""
    payments = [
        p for p in state.get("payments", []) if p["metadata"].get("show_id") == show_id
    ]
    succeeded = [p for p in payments if p["status"] == "succeeded"]
    per_hold = Counter(p["metadata"].get("hold_id", "") for p in succeeded)
    charged_keys = state.get("charged", {})
    double = sum(n - 1 for n in per_hold.values() if n > 1) + sum(
        int(charged_keys.get(p["idempotency_key"], 0)) - 1
        for p in succeeded
        if int(charged_keys.get(p["idempotency_key"], 0)) > 1
    )
    without = [
        p
        for p in succeeded
        if p["metadata"].get("hold_id") not in log.sold and p["refund_id"] is None
    ]
    return {
        "payments": len(payments),
        "succeeded": len(succeeded),
        "failed": sum(1 for p in payments if p["status"] == "failed"),
        "processing": sum(1 for p in payments if p["status"] == "processing"),
        "refunded": sum(1 for p in succeeded if p["refund_id"] is not None),
        "refund_required_in_log": len(log.refund_required),
        "charged_without_tickets": len(without),
        "double_charges": double,
        "create_calls": sum(
            int(state.get("create_calls", {}).get(p["idempotency_key"], 0))
            for p in payments
        ),
        "payment_results_in_inbox": log.payment_results,
        "webhooks_delivered": state.get("webhooks_delivered", 0),
        "webhooks_given_up": state.get("webhooks_given_up", 0),
    }


def fairness(inputs: SaleInputs) -> dict[str, Any]:
    """Queue order against purchase order (humans), and the bots' shares."""
    placed = inputs.sale_log.placed_by_hold
    keys, orders, admitted_keys, admitted_at = [], [], [], []
    for result in inputs.results:
        if result.visitor.is_bot:
            continue
        key = inputs.queue_key(result)
        if key is None:
            continue
        if result.admitted_at is not None:
            admitted_keys.append(key)
            admitted_at.append(result.admitted_at)
        if result.hold_id is not None and result.hold_id in placed:
            keys.append(key)
            orders.append(placed[result.hold_id])
    recorder, log = inputs.recorder, inputs.sale_log
    bought = _places_by_class(log)
    bots = inputs.plan.bots
    shares = stats.bot_share(
        recorder.requests["bot"],
        sum(recorder.requests.values()),
        bots,
        len(inputs.results),
        bought["bot"],
        sum(bought.values()),
    )
    return {
        "spearman_queue_vs_purchase": _finite(stats.spearman(keys, orders)),
        "purchases_ranked": len(keys),
        "spearman_queue_vs_admission": _finite(
            stats.spearman(admitted_keys, admitted_at)
        ),
        "admissions_ranked": len(admitted_keys),
        "bots": asdict(shares),
        "requests": dict(recorder.requests),
    }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _latencies(recorder: Recorder, log: SaleLog) -> dict[str, dict[str, Any]]:
    samples = dict(recorder.latencies)
    samples["payment-to-sold"] = log.payment_to_sold_seconds()
    found = {}
    for step in STEPS:
        values = samples.get(step, [])
        found[step] = {
            "count": len(values),
            **{
                name: _finite(stats.percentile(values, q))
                for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))
            },
        }
    return found


def _eta_samples(results: list[VisitorResult]) -> list[stats.EtaSample]:
    return [s for r in results if not r.visitor.is_bot for s in r.eta_samples]


def timeline(inputs: SaleInputs) -> dict[str, Any]:
    """Per second from the first arrival: holds, sales, admissions, the queue."""
    plan, log = inputs.plan, inputs.sale_log
    origin = inputs.opens_at - plan.spike_before_seconds
    ends = [origin + 1]
    ends += [s.at for s in log.sold.values()] + log.placed_at
    ends += [r.admitted_at for r in inputs.results if r.admitted_at is not None]
    seconds = min(MAX_TIMELINE_SECONDS, math.ceil(max(ends) - origin) + 1)
    sold = list(log.sold.values())
    spans = [(r.joined_at, r.admitted_at) for r in inputs.results if r.joined_at]
    room: list[int] = [0] * seconds
    for at, position in inputs.positions:
        slot = math.floor(at - origin)
        if 0 <= slot < seconds:
            room[slot] = max(room[slot], position)
    buckets = math.ceil(seconds / ETA_BUCKET_SECONDS)
    eta = stats.eta_per_bucket(
        _eta_samples(inputs.results), origin, ETA_BUCKET_SECONDS, buckets
    )
    return {
        "origin_epoch_seconds": origin,
        "opens_after_seconds": plan.spike_before_seconds,
        "holds_per_second": stats.per_second(log.placed_at, origin, seconds),
        "sold_places_per_second": stats.per_second(
            [s.at for s in sold], origin, seconds, [s.quantity for s in sold]
        ),
        "admitted_per_second": stats.per_second(
            [r.admitted_at for r in inputs.results if r.admitted_at], origin, seconds
        ),
        "queue_length": stats.waiting_per_second(spans, origin, seconds),
        "room_position_max": room,
        "eta_bucket_seconds": ETA_BUCKET_SECONDS,
        "eta_median_predicted_actual": [list(pair) if pair else None for pair in eta],
    }


def problems(report: dict[str, Any]) -> list[str]:
    """What makes the sale unsound (the run then exits non-zero)."""
    found = []
    if report["oversold"]:
        found.append(f"{report['oversold']} places oversold")
    if report["sold_twice"] or report["sold_without_hold"]:
        found.append(
            f"{report['sold_twice']} holds sold twice, "
            f"{report['sold_without_hold']} sales without a hold"
        )
    paid = report["paid_without_tickets"]
    if paid["log"] or paid["provider"]:
        found.append(
            f"paid without tickets: {paid['log']} in the log, "
            f"{paid['provider']} charged at the provider"
        )
    if report["double_charges"]:
        found.append(f"{report['double_charges']} double charges")
    if report["stolen_tokens_accepted"]:
        found.append(f"{report['stolen_tokens_accepted']} stolen tokens accepted")
    if report["without_outcome"]:
        found.append(f"{report['without_outcome']} visitors ended with no outcome")
    if not report["sold"]["holds_placed"]:
        found.append("no hold was placed")
    lost = report["sold"]["rejected_by_reason"].get("unknown_section", 0)
    if lost:
        found.append(f"{lost} holds refused for a section the show has")
    return found
