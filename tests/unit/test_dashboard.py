"""The on-sale dashboard is well-formed Grafana JSON over metrics that exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.unit.metric_names import exposed_names, names_in

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "onsale.json"
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "gauge", "table"}
GRID_COLUMNS = 24


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _graphs() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def test_dashboard_has_the_fields_grafana_needs() -> None:
    dashboard = _dashboard()

    panels = dashboard["panels"]

    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS and grid["h"] > 0, panel


def test_dashboard_covers_every_part_of_an_onsale() -> None:
    rows = {p["title"] for p in _dashboard()["panels"] if p["type"] == "row"}

    assert rows == {
        "Traffic",
        "Queue",
        "Holds and sales",
        "Write path and lag",
        "Payments",
    }


def test_every_panel_queries_only_metrics_some_process_exposes() -> None:
    exposed = exposed_names()

    for panel in _graphs():
        targets = panel["targets"]
        assert targets, panel["title"]
        for target in targets:
            named = names_in(target["expr"])
            assert named, (panel["title"], target["expr"])
            assert named <= exposed, (panel["title"], sorted(named - exposed))
            assert target["refId"]
