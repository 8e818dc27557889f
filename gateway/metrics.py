"""The gateway's metrics: requests, latency, shedding, the waiting room.

Served by ``GET /metrics`` of the gateway itself. Routes are the router's
templates (``/v1/holds/{hold_id}``), never the paths asked for; a request that
matched no route counts as ``unmatched``. The queue gauges are read from the
rooms this instance pumps at scrape time, summed over them (no show label).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from gateway.breaker import BreakerState, GuardedSender
from gateway.problems import PROBLEM_TYPE, Handler
from gateway.waiting_room import RoomState, newest_key, people_between
from infra.metrics import LATENCY_BUCKETS_SECONDS

if TYPE_CHECKING:
    from gateway.ports import CommandSender
    from gateway.room import Rooms

UNMATCHED_ROUTE: Final = "unmatched"
SHED_STATUSES: Final = frozenset({429, 503})
ETA_ERROR_BUCKETS: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "ticketing_gateway_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "ticketing_gateway_request_duration_seconds",
    "Time from a request's arrival to its answer, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS_SECONDS,
    registry=REGISTRY,
)
SHED = Counter(
    "ticketing_gateway_shed",
    "Requests refused with 429 or 503, by status and problem type (the reason).",
    ["status", "reason"],
    registry=REGISTRY,
)
QUEUE_WAITING = Gauge(
    "ticketing_gateway_queue_waiting",
    "Estimated people waiting behind the admitted mark, over the rooms served.",
    registry=REGISTRY,
)
QUEUE_ADMITTED = Gauge(
    "ticketing_gateway_queue_admitted",
    "Estimated people the admitted-up-to mark has passed, over the rooms served.",
    registry=REGISTRY,
)
QUEUE_OUTFLOW = Gauge(
    "ticketing_gateway_queue_outflow_per_second",
    "Measured waiting-room outflow (people per second), over the rooms served.",
    registry=REGISTRY,
)
ETA_ERROR = Histogram(
    "ticketing_gateway_queue_eta_error_ratio",
    "Relative error of the ETAs a pump's outflow promised: |actual/assumed - 1|.",
    buckets=ETA_ERROR_BUCKETS,
    registry=REGISTRY,
)
COMMAND_LAG = Gauge(
    "ticketing_gateway_command_lag_seconds",
    "Smoothed delay of command outcomes this instance sees (drives shedding).",
    registry=REGISTRY,
)
BREAKER_OPEN = Gauge(
    "ticketing_gateway_breaker_open",
    "1 while the command-log circuit breaker refuses commands, else 0.",
    registry=REGISTRY,
)

ROOM_STORE_DEGRADED = Gauge(
    "ticketing_gateway_room_store_degraded",
    "1 while the shared room store is down and buckets and quotas are local, else 0.",
    registry=REGISTRY,
)
STALE_READS = Counter(
    "ticketing_gateway_stale_reads",
    "Read-model loads that failed and were answered from the cache, stale.",
    registry=REGISTRY,
)


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Count and time every request; it sits outside the problem middleware."""
    started = time.perf_counter()
    status, slug = 500, None
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer
        raise
    else:
        status, slug = response.status, response.get(PROBLEM_TYPE)
        return response
    finally:
        _record(request, status, slug, time.perf_counter() - started)


def _record(
    request: web.Request, status: int, slug: str | None, seconds: float
) -> None:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else UNMATCHED_ROUTE
    REQUESTS.labels(route, request.method, str(status)).inc()
    REQUEST_DURATION.labels(route, request.method).observe(seconds)
    if status in SHED_STATUSES:
        SHED.labels(str(status), slug or "unknown").inc()


def observe_pump(before: RoomState, after: RoomState) -> None:
    """Compare the outflow ETAs assumed with the one a pump achieved.

    An ETA is ``ahead / assumed`` with ``assumed`` the room's outflow before the
    pump; the pump let ``actual`` people per second through, so every ETA told
    meanwhile was off by ``actual / assumed - 1``. Only pumps that left people
    waiting say anything about the outflow.
    """
    # TODO(limit): a per-room proxy, not the error of each buyer's first ETA;
    # carry the first ETA in the queue ticket if buyers report ETAs off by more
    # than this histogram shows.
    since_ms = max(before.pumped_at_ms, before.opens_at_ms)
    elapsed_seconds = (after.pumped_at_ms - since_ms) / 1000.0
    assumed = before.outflow_per_second or before.admit_per_second
    if elapsed_seconds <= 0 or assumed <= 0:
        return
    if people_between(after, after.mark, newest_key(after, after.pumped_at_ms)) < 1:
        return
    actual = people_between(before, before.mark, after.mark) / elapsed_seconds
    ETA_ERROR.observe(abs(actual / assumed - 1))


def refresh(rooms: Rooms, sender: CommandSender, now_ms: int) -> None:
    """Set the gauges read from the gateway's state at scrape time."""
    waiting = admitted = outflow = 0.0
    for room in rooms.served():
        waiting += people_between(room, room.mark, newest_key(room, now_ms))
        admitted += people_between(room, 0.0, room.mark)
        outflow += room.outflow_per_second
    QUEUE_WAITING.set(waiting)
    QUEUE_ADMITTED.set(admitted)
    QUEUE_OUTFLOW.set(outflow)
    COMMAND_LAG.set(rooms.lag.lag_seconds)
    if isinstance(sender, GuardedSender):
        BREAKER_OPEN.set(sender.breaker.state is BreakerState.OPEN)


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics: the gateway's metrics in the Prometheus text format."""
    # gateway.deps imports the rooms, which import this module: import it late.
    from gateway.deps import BUS, ROOMS

    rooms = request.app[ROOMS]
    refresh(rooms, request.app[BUS], rooms.now_ms())
    response = web.Response(body=generate_latest(REGISTRY))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
