"""The alert rules pass their promtool tests and use only metrics that exist."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.metric_names import exposed_names, names_in, process_registries

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "infra" / "prometheus" / "alerts_test.yml"
PROMTOOL_SCRIPT = ROOT / "infra" / "promtool.sh"


def _promtool() -> str:
    """promtool's path, fetched by the project's script; a clear failure if not."""
    found = subprocess.run(
        [str(PROMTOOL_SCRIPT)], capture_output=True, text=True, timeout=300
    )
    if found.returncode != 0:
        pytest.fail(f"promtool is needed and could not be fetched:\n{found.stderr}")
    return found.stdout.strip().splitlines()[-1]


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_rules_are_valid_when_promtool_checks_them() -> None:
    promtool = _promtool()

    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_and_stays_quiet_as_its_promtool_test_says() -> None:
    promtool = _promtool()

    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_promtool_test() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}

    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {
        case["alertname"] for test in tests for case in test.get("alert_rule_test", ())
    }

    assert alerts and alerts <= tested, sorted(alerts - tested)


def test_every_metric_the_rules_name_is_exposed_by_some_process() -> None:
    exposed = exposed_names()

    named = {name for rule in _rules() for name in names_in(rule["expr"])}

    assert len(named) >= 10
    assert named <= exposed, sorted(named - exposed)


def test_every_metric_follows_the_naming_conventions() -> None:
    for process, registry in process_registries().items():
        for family in registry.collect():
            assert family.name.startswith("ticketing_"), (process, family.name)
            assert family.documentation, (process, family.name)
            assert not family.name.endswith("_milliseconds"), family.name
            if family.type == "histogram" and "_seconds" not in family.name:
                assert family.name.endswith(("_ratio", "_records")), family.name
