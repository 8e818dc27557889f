"""One fault under load: steady buyers, the fault, the recovery, the checks.

``under_load`` opens a show of a few GA sections, lets buyers arrive at a steady
rate (``bench.fault_load``), applies the fault after a baseline period, keeps the
buyers coming for a while after the repair, lets the last ones finish, and then
checks the promises (``FaultSystem.check``). The report gives the time to
recover of two series: checkouts answered to buyers over HTTP, and tickets sold
on the log (which needs the payments worker and the provider as well).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.fault_load import (
    CHECKOUT_OK,
    READ_FRESH,
    READ_REFUSED,
    READ_STALE,
    Buyers,
    LoadPlan,
    Recovery,
    Timeline,
    recovery,
)
from bench.fault_system import Check, Fault, FaultSystem

WARM_UP_SECONDS = 5.0
"""The first seconds of load, left out of the baseline rate."""


@dataclass
class FaultReport:
    """What one fault did to the sale, and whether the promises held."""

    fault: str
    fault_seconds: float
    checkouts: Recovery
    sold: Recovery
    check: Check
    outcomes: dict[str, int]
    reads_during_fault: dict[str, int]
    restarts: dict[str, int] = field(default_factory=dict)
    """Processes that exited during the fault and were started again, by role."""

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "fault": self.fault,
            "fault_seconds": round(self.fault_seconds, 1),
            "checkouts": self.checkouts.as_dict(),
            "tickets_sold": self.sold.as_dict(),
            "projections_caught_up_seconds": _round(self.check.caught_up_seconds),
            "promises_broken": self.check.problems(),
            "charged": self.check.charged,
            "sold": self.check.sold,
            "refunded": self.check.refunded,
            "outcomes": self.outcomes,
            "reads_during_fault": self.reads_during_fault,
            "restarted_by_supervisor": self.restarts,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def under_load(
    system: FaultSystem,
    show_id: str,
    fault: Callable[[], Fault],
    baseline_seconds: float = 15.0,
    after_seconds: float = 10.0,
    max_after_seconds: float = 90.0,
    buyers_per_second: float = 2.0,
    sections: tuple[str, ...] = ("floor-a", "floor-b", "floor-c"),
    capacity: int = 2000,
) -> FaultReport:
    """Run ``fault`` in the middle of a steady sale and report on it.

    Buyers keep coming for at least ``after_seconds`` after the repair, and on
    until the checkout rate is back (or ``max_after_seconds`` have passed).
    """
    system.open_sale(show_id, list(sections), capacity)
    restarts_before = system.restarts.copy()
    plan = LoadPlan(
        base_url=system.gateway,
        show_id=show_id,
        sections=sections,
        buyers_per_second=buyers_per_second,
        duration_seconds=600.0,  # bound only: arrivals stop after the recovery
    )
    timeline = Timeline()
    buyers = Buyers(plan, system.settings, timeline)
    load = threading.Thread(target=asyncio.run, args=(buyers.run(),), daemon=True)
    load.start()
    try:
        time.sleep(baseline_seconds)
        done = fault()
        _until_recovered(system, timeline, done, after_seconds, max_after_seconds)
    finally:
        stopped = timeline.now()
        buyers.stop_arrivals()
        load.join(plan.buyer_deadline_seconds + plan.request_timeout_seconds + 10)
    system.restart_exited()
    check = system.check(show_id, list(timeline.checked_out))
    report = _report(timeline, done, check, baseline_seconds, stopped)
    report.restarts = dict(system.restarts - restarts_before)
    return report


def _until_recovered(
    system: FaultSystem,
    timeline: Timeline,
    fault: Fault,
    after_seconds: float,
    max_after_seconds: float,
) -> None:
    """Wait (bounded) until the checkout rate is back after the repair.

    Meanwhile a process that exited is started again, as its supervisor
    (systemd, Kubernetes) would; the report counts these restarts.
    """
    began = timeline.since_start(fault.began_at)
    repaired = timeline.since_start(fault.repaired_at)
    baseline = (WARM_UP_SECONDS, began)
    for _ in range(int(max_after_seconds) + 1):
        system.restart_exited()
        since = timeline.now() - repaired
        if since >= max_after_seconds:
            return
        if since >= after_seconds:
            times = timeline.times(CHECKOUT_OK)
            back = recovery(times, baseline, (began, repaired), timeline.now())
            if back.rate_recovered_seconds is not None:
                return
        time.sleep(1.0)


def _report(
    timeline: Timeline,
    fault: Fault,
    check: Check,
    baseline_seconds: float,
    until: float,
) -> FaultReport:
    """Recovery figures of both series around the fault, up to ``until``."""
    began = timeline.since_start(fault.began_at)
    repaired = timeline.since_start(fault.repaired_at)
    baseline = (WARM_UP_SECONDS, min(baseline_seconds, began))
    window = (began, repaired)
    checkout_times = timeline.times(CHECKOUT_OK)
    sold_times = sorted(timeline.since_start_wall(t) for t in check.sold_times)
    reads = [
        kind
        for t, kind in timeline.stamps
        if began <= t < repaired and kind in (READ_FRESH, READ_STALE, READ_REFUSED)
    ]
    return FaultReport(
        fault=fault.name,
        fault_seconds=fault.repaired_at - fault.began_at,
        checkouts=recovery(
            checkout_times,
            baseline,
            window,
            until,
            first_after=timeline.sent_times(CHECKOUT_OK),
        ),
        sold=recovery(sold_times, baseline, window, until),
        check=check,
        outcomes=dict(timeline.outcomes),
        reads_during_fault={kind: reads.count(kind) for kind in set(reads)},
    )
