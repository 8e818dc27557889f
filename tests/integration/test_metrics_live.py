"""Every metric the alert rules and the dashboard name is served by a running system.

The agent, projection worker, payments worker, audit and gateway run as their own
processes against the real Kafka and Cassandra; each one's metrics endpoint is
scraped over HTTP, and the names the rules use must all be among the series
they announce (a labelled series no request has touched yet still announces
itself by its ``# TYPE`` line).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from infra.metrics import _SAMPLE_SUFFIXES
from infra.settings import Settings
from tests.integration.support import settings_env, start_cli

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "infra" / "grafana" / "onsale.json"


PORT_SETTINGS = {
    "agent": "TICKETING_AGENT_WEB_PORT",
    "projection": "TICKETING_PROJECTION_METRICS_PORT",
    "payments": "TICKETING_PAYMENTS_METRICS_PORT",
    "audit": "TICKETING_AUDIT_METRICS_PORT",
    "gateway": "TICKETING_GATEWAY_PORT",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(url: str, deadline: float) -> str:
    """The endpoint's text once it answers, polling until ``deadline``."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                return str(response.read().decode())
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered: {exc}") from exc
            time.sleep(0.5)


def _announced(text: str) -> set[str]:
    """Series names a scrape announces: its samples and its families' suffixes."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            base = family.removesuffix("_total") if kind == "counter" else family
            names.update(base + suffix for suffix in _SAMPLE_SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def _named_by_rules_and_dashboard() -> set[str]:
    from tests.unit.metric_names import names_in

    groups = yaml.safe_load(RULES.read_text())["groups"]
    named = {
        name
        for group in groups
        for rule in group["rules"]
        for name in names_in(rule["expr"])
    }
    return named | names_in(json.dumps(json.loads(DASHBOARD.read_text())))


def test_every_metric_the_rules_and_dashboard_name_is_served_by_a_running_system(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    ports = {process: _free_port() for process in PORT_SETTINGS}
    env = {
        **settings_env(isolated_settings),
        **{PORT_SETTINGS[process]: str(port) for process, port in ports.items()},
    }
    processes: list[subprocess.Popen[bytes]] = [
        start_cli(env, [name], tmp_path / f"{name}.log")
        for name in ("agent", "projection", "payments", "audit", "gateway")
    ]
    try:
        deadline = time.monotonic() + 120
        served = {
            process: _announced(_scrape(f"http://127.0.0.1:{port}/metrics", deadline))
            for process, port in ports.items()
        }
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    assert all(names for names in served.values()), served.keys()
    named = _named_by_rules_and_dashboard()
    exposed = set().union(*served.values())
    assert len(named) >= 10
    assert named <= exposed, sorted(named - exposed)
