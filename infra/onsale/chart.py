"""The report's timeline as a PNG (matplotlib, no display needed).

Four panels over seconds since the first arrival: holds and sales per second;
the queue (visitors waiting, and the largest position the room told anyone);
the room's ETA beside the wait that followed it; latency per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_chart(report: dict[str, Any], path: Path) -> Path:
    """Draw the report's timeline into ``path`` (PNG); the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = report["timeline"]
    seconds = list(range(len(t["holds_per_second"])))
    figure, axes = plt.subplots(2, 2, figsize=(14, 9))
    (throughput, queue), (eta, latency) = axes

    throughput.plot(seconds, t["holds_per_second"], label="holds placed /s (log)")
    throughput.plot(seconds, t["sold_places_per_second"], label="places sold /s (log)")
    throughput.plot(seconds, t["admitted_per_second"], label="admitted /s", alpha=0.6)
    _opening(throughput, t)
    throughput.set(title="Throughput", xlabel="s since first arrival", ylabel="per s")
    throughput.legend()

    queue.plot(seconds, t["queue_length"], label="joined, no token yet (truth)")
    queue.plot(
        seconds, t["room_position_max"], label="largest position told", alpha=0.6
    )
    _opening(queue, t)
    queue.set(title="Queue length", xlabel="s since first arrival", ylabel="visitors")
    queue.legend()

    bucket = t["eta_bucket_seconds"]
    points = [
        (i * bucket, pair) for i, pair in enumerate(t["eta_median_predicted_actual"])
    ]
    known = [(x, pair) for x, pair in points if pair]
    eta.plot([x for x, _ in known], [p[0] for _, p in known], "o-", label="ETA told")
    eta.plot([x for x, _ in known], [p[1] for _, p in known], "s-", label="actual")
    if not known:
        eta.text(
            0.5,
            0.5,
            "no waiting answer was followed by an admission",
            ha="center",
            transform=eta.transAxes,
        )
    _opening(eta, t)
    eta.set(
        title=f"ETA accuracy (median per {bucket:.0f} s of answers)",
        xlabel="s since first arrival (answer given)",
        ylabel="wait (s)",
    )
    eta.legend()

    _latency_bars(latency, report["latency_seconds"])
    figure.suptitle(_headline(report))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _opening(axis: Any, t: dict[str, Any]) -> None:
    axis.axvline(t["opens_after_seconds"], color="grey", linestyle=":", label="opening")


def _latency_bars(axis: Any, latencies: dict[str, dict[str, Any]]) -> None:
    steps = [s for s, f in latencies.items() if f["count"]]
    width = 0.27
    for offset, name in enumerate(("p50", "p99", "p999")):
        values = [latencies[s][name] or 0.0 for s in steps]
        axis.bar(
            [i + (offset - 1) * width for i in range(len(steps))],
            values,
            width,
            label=name,
        )
    axis.set_xticks(range(len(steps)), steps, rotation=30, ha="right")
    axis.set_yscale("log")
    axis.set(title="Latency per step", ylabel="s (log scale)")
    axis.legend()


def _headline(report: dict[str, Any]) -> str:
    sold = report["sold"]
    bots = report["fairness"]["bots"]
    return (
        f"{report['show_id']}: {sold['places']}/{report['places']} places sold, "
        f"oversold {report['oversold']}, paid without tickets "
        f"{report['paid_without_tickets']['log']}, double charges "
        f"{report['double_charges']}, bots {bots['tickets']:.0%} of tickets "
        f"for {bots['traffic']:.0%} of traffic"
    )
