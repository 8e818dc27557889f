"""The series every process of the system exposes, and the ones a text names."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from infra.audit import LogAudit
from infra.audit import registry_for as audit_registry
from infra.metrics import sample_names
from projections.metrics import registry_for as projection_registry
from projections.projector import WorkerCounts

METRIC_NAME = re.compile(r"\bticketing_[a-z0-9_]+\b")


def process_registries() -> dict[str, CollectorRegistry]:
    """The registry of each process, as it serves it."""
    from gateway.metrics import REGISTRY as GATEWAY
    from streams.metrics import REGISTRY as AGENT
    from streams.payments.metrics import REGISTRY as PAYMENTS

    return {
        "gateway": GATEWAY,
        "agent": AGENT,
        "projection": projection_registry(WorkerCounts(), lambda _: None, 8),
        "payments": PAYMENTS,
        "audit": audit_registry(LogAudit(60.0)),
    }


def exposed_names() -> set[str]:
    """Every series name some process can expose."""
    names: set[str] = set()
    for registry in process_registries().values():
        names |= sample_names(registry)
    return names


def names_in(expression: str) -> set[str]:
    """Our metric names a PromQL expression uses (recording rules use colons)."""
    return set(METRIC_NAME.findall(expression))
