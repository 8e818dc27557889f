"""``ticketing capacity`` sizes each hop from the measured figures it reads."""

from __future__ import annotations

import json
from pathlib import Path

from infra.capacity import Peak, load_figures, plan

FIGURES = {
    "agent_commands_per_second_per_process": 1000,
    "status_polls_per_second_per_core": 10000,
    "admitted_holds_per_second_per_core": 5000,
    "projection_events_per_second_per_worker": 50000,
}


def _results(folder: Path) -> Path:
    figures = {
        name: {"low": low, "high": low, "unit": "/s", "command": "bench"}
        for name, low in FIGURES.items()
    }
    (folder / "run.json").write_text(json.dumps({"figures": figures}))
    return folder


def test_plan_shows_each_hop_when_figures_are_read_from_bench_results(
    tmp_path: Path,
) -> None:
    peak = Peak(1_000_000, seats=60_000, minutes=10, headroom=1.0)

    lines = plan(peak, load_figures(_results(tmp_path)))

    text = "\n".join(lines)
    assert "holds/s = 60,000 seats / 2.0 places per hold / 600 s x 3.0" in text
    assert "agent workers = ceil(450.0 x 1.0 headroom / 1,000) = 1" in text
    assert "gateway cores = ceil((999,850 polls/s / 10,000" in text
    assert text.rstrip().endswith("per-broker throughput not measured)")


def test_checked_in_results_hold_every_figure_the_plan_needs() -> None:
    figures = load_figures()

    assert set(FIGURES) <= set(figures)
    for figure in figures.values():
        assert figure["low"] > 0 and figure["command"]


def test_other_benches_reports_beside_the_figures_are_passed_over(
    tmp_path: Path,
) -> None:
    folder = _results(tmp_path)
    (folder / "baselines.json").write_text(json.dumps({"designs": {"redis": {}}}))

    assert set(load_figures(folder)) == set(FIGURES)
