"""The report as text: the figures that matter first, then the timeline."""

from __future__ import annotations

from typing import Any, Final

TIMELINE_ROW_SECONDS: Final = 10


def render(report: dict[str, Any]) -> str:
    """The text report of one on-sale."""
    lines: list[str] = []
    add = lines.append
    machine = report["machine"]
    add("== on-sale report")
    add(f"show                    {report['show_id']}")
    add(
        f"machine                 {machine['cpus']} CPUs, load "
        f"{_load(machine['load_before'])} before, {_load(machine['load_after'])} after;"
        f" driver loop lag up to {machine['driver_lag_seconds_max']:.1f} s"
    )
    sold = report["sold"]
    visitors = report["visitors"]
    add(
        f"places / visitors       {report['places']} places; {visitors['humans']} "
        f"humans + {visitors['bots']} bot sessions"
    )
    add(
        f"sold (event log)        {sold['places']} places in {sold['holds']} orders; "
        f"humans {sold['places_by_class'].get('human', 0)}, "
        f"bots {sold['places_by_class'].get('bot', 0)}"
    )
    add(f"holds placed (log)      {sold['holds_placed']}")
    refused = ", ".join(
        f"{k} {v}" for k, v in sorted(sold["rejected_by_reason"].items())
    )
    add(f"holds refused (log)     {refused or 'none'}")
    add(f"OVERSOLD (event log)    {report['oversold']}")
    twice, no_hold = report["sold_twice"], report["sold_without_hold"]
    add(f"sold twice / no hold    {twice} / {no_hold}")
    paid = report["paid_without_tickets"]
    add(
        f"PAID WITHOUT TICKETS    {paid['log']} (log), "
        f"{paid['provider']} (provider charges)"
    )
    add(f"DOUBLE CHARGES          {report['double_charges']} (provider records)")
    lines.extend(_payments(report["payments"]))
    lines.extend(_fairness(report["fairness"], report["stolen_tokens_accepted"]))
    lines.extend(_latencies(report["latency_seconds"]))
    lines.extend(_eta(report["eta_accuracy"]))
    lines.extend(_outcomes(report["outcomes"]))
    add(
        f"cut off by the bound    {report['cut_off']} visitors "
        f"(max_seconds {report['plan']['max_seconds']:.0f} s)"
    )
    lines.extend(_bot_answers(report["answers"].get("bot", {})))
    add(f"retries (same key)      {_pairs(report['retries']) or 'none'}")
    lines.extend(_timeline(report["timeline"]))
    add(f"durations               {_pairs(report['durations_seconds'], '.0f', ' s')}")
    return "\n".join(lines)


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def _pairs(counts: dict[str, Any], form: str = "", unit: str = "") -> str:
    return ", ".join(f"{k} {format(v, form)}{unit}" for k, v in counts.items())


def _payments(p: dict[str, Any]) -> list[str]:
    return [
        f"payments (provider)     {p['payments']} created ({p['create_calls']} calls), "
        f"{p['succeeded']} succeeded, {p['failed']} declined, "
        f"{p['processing']} processing, {p['refunded']} refunded "
        f"({p['refund_required_in_log']} refunds required in the log)",
        f"webhooks                {p['webhooks_delivered']} delivered, "
        f"{p['webhooks_given_up']} given up; {p['payment_results_in_inbox']} "
        "payment results in the inbox (duplicates included)",
    ]


def _fairness(f: dict[str, Any], stolen: int) -> list[str]:
    bots = f["bots"]
    return [
        f"fairness                Spearman(queue position, purchase order) = "
        f"{f['spearman_queue_vs_purchase']} over {f['purchases_ranked']} human holds; "
        f"vs admission order = {f['spearman_queue_vs_admission']} "
        f"({f['admissions_ranked']})",
        f"bots                    {bots['traffic']:.1%} of requests, "
        f"{bots['sessions']:.1%} of visitors, {bots['tickets']:.1%} of places sold; "
        f"stolen tokens accepted {stolen}",
    ]


def _latencies(latencies: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "latency (s)             step             count      p50      p99     p999"
    ]
    for step, figures in latencies.items():
        values = [figures[name] for name in ("p50", "p99", "p999")]
        text = "".join(f"{'-' if v is None else format(v, '.3f'):>9}" for v in values)
        lines.append(f"{'':24}{step:<16}{figures['count']:>6}{text}")
    return lines


def _eta(eta: dict[str, Any]) -> list[str]:
    if not eta["samples"]:
        return ["ETA accuracy            no waiting answers were followed by admission"]
    return [
        f"ETA accuracy            {eta['samples']} answers: median |error| "
        f"{eta['median_abs_error_seconds']:.1f} s, "
        f"p90 {eta['p90_abs_error_seconds']:.1f} s, "
        f"median (actual - ETA) {eta['median_error_seconds']:+.1f} s, "
        f"{eta['within_half']:.0%} within ±50 % (or 2 s)"
    ]


def _outcomes(outcomes: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"outcomes ({kind}){'':{max(0, 13 - len(kind))}}{_pairs(counts)}"
        for kind, counts in sorted(outcomes.items())
    ]


def _bot_answers(steps: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"bot answers             {step}: {_pairs(labels)}"
        for step, labels in steps.items()
        if step.startswith("bot-") or step in ("join", "challenge")
    ]


def _timeline(t: dict[str, Any]) -> list[str]:
    lines = [
        "timeline (from the first arrival; opening at "
        f"{t['opens_after_seconds']:.0f} s)",
        "   t s   holds/s   sold/s   admitted/s   queue   ETA vs actual (s)",
    ]
    holds, sold = t["holds_per_second"], t["sold_places_per_second"]
    admitted, queue = t["admitted_per_second"], t["queue_length"]
    eta, bucket = t["eta_median_predicted_actual"], t["eta_bucket_seconds"]
    step = TIMELINE_ROW_SECONDS
    for start in range(0, len(holds), step):
        end = min(len(holds), start + step)
        span = end - start
        pair = eta[int(start // bucket)] if int(start // bucket) < len(eta) else None
        eta_text = f"{pair[0]:.0f} vs {pair[1]:.0f}" if pair else "-"
        lines.append(
            f"{start:6d}{sum(holds[start:end]) / span:10.1f}"
            f"{sum(sold[start:end]) / span:9.1f}{sum(admitted[start:end]) / span:13.1f}"
            f"{queue[start]:8d}   {eta_text}"
        )
    return lines
