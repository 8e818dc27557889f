"""Shared pieces of the metrics: serving a registry, naming its samples, buckets.

Each process declares its metrics in a module of its own, on a registry of its
own, so a scrape of one process shows only what that process measures:

==================  ============================  ===========================
process             module                        served on
==================  ============================  ===========================
gateway             ``gateway.metrics``           ``GET /metrics``
inventory agent     ``streams.metrics``           ``agent_web_port``
projection worker   ``projections.metrics``       ``projection_metrics_port``
payments worker     ``streams.payments.metrics``  ``payments_metrics_port``
audit               ``infra.audit``               ``audit_metrics_port``
==================  ============================  ===========================

Names follow Prometheus conventions: the ``ticketing_`` prefix, base units
(seconds, places), counters ending in ``_total``; labels come from small fixed
sets (route templates, statuses, problem types, command types, partitions,
sections), never from buyer, seat, hold or order ids.
"""

from __future__ import annotations

import logging
from typing import Final

from prometheus_client import CollectorRegistry, start_http_server

logger = logging.getLogger(__name__)

LATENCY_BUCKETS_SECONDS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Histogram buckets of request and processing latencies (seconds)."""

_SAMPLE_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def serve(registry: CollectorRegistry, host: str, port: int) -> bool:
    """Serve the registry on http://host:port/ from a daemon thread.

    A taken port costs the metrics, not the process: the agent, the projection
    and the payments worker go on deciding, folding and charging without them,
    and say so in the log. False then.
    """
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        logger.error(
            "metrics not served: the port is taken or refused",
            extra={"host": host, "port": port, "error": str(exc)},
        )
        return False
    return True


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of the registry can show, used or not yet.

    A labelled metric shows no sample until a label set is used, so the names
    come from each family's type, not from its current samples.
    """
    names: set[str] = set()
    for family in registry.collect():
        suffixes = _SAMPLE_SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
        names.update(sample.name for sample in family.samples)
    return names
