"""The aiohttp application of the gateway: routes, dependencies and start-up.

::

    POST /v1/shows                                        create a show (admin)
    GET  /v1/shows/{show_id}/availability                 cached availability
    POST /v1/shows/{show_id}/sections/{section_id}/holds  place a hold
    GET  /v1/holds/{hold_id}                              what became of a hold
    POST /v1/holds/{hold_id}/release                      give a hold back
    POST /v1/holds/{hold_id}/checkout                     keep a hold for payment
    PUT  /v1/shows/{show_id}/waiting-room                 open a waiting room (admin)
    POST /v1/shows/{show_id}/waiting-room/challenge       proof-of-work puzzle
    POST /v1/shows/{show_id}/waiting-room/join            a queue ticket
    GET  /v1/shows/{show_id}/waiting-room/status          position, ETA, 304
    POST /v1/shows/{show_id}/waiting-room/admission       an admission token
    GET  /problems/{slug}                                 what a problem type means
    POST /v1/payments/webhook                             a provider's webhook
    GET  /healthz                                         liveness
    GET  /metrics                                         Prometheus metrics

``create_app`` takes its dependencies, so tests hand it fakes; ``run`` builds the
Kafka adapters and serves until SIGINT or SIGTERM. Commands go through a circuit
breaker (``gateway.breaker``), so a command log that is down answers 503 at once.
Holds and checkouts need an admission token from the waiting room
(``gateway.queue``, ``gateway.admission``); every ``/v1/`` request takes a token
from its address's bucket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Final

import uvloop
from aiohttp import web

from gateway.admission import limit_middleware
from gateway.availability import AvailabilityCache, etag_matches
from gateway.breaker import CircuitBreaker, GuardedSender
from gateway.bus import CommandBus
from gateway.deps import (
    AVAILABILITY,
    BUS,
    HOLDS,
    OUTCOMES,
    PARTITION_OF,
    PARTITIONS,
    REPLY_TIMEOUT,
    ROOMS,
    SHORTCUT,
    SHOW_SOURCE,
    STRIPES,
)
from gateway.fields import valid_id
from gateway.holds import get_hold, place_hold
from gateway.http import body_response, json_response
from gateway.lifecycle import checkout_hold, release_hold
from gateway.load import LagMeter
from gateway.metrics import get_metrics, metrics_middleware
from gateway.outcomes import OutcomeWaiter
from gateway.poll import queue_status, status_shortcut
from gateway.ports import AvailabilitySource, CommandSender, HoldSource, OutcomeSource
from gateway.problems import HttpProblem, describe_problem, problem_middleware
from gateway.queue import admit, issue_challenge, join, open_room
from gateway.read_views import ReadSideSource, add_read_routes, staleness_headers
from gateway.room import RoomConfig, Rooms, pumping
from gateway.room_store import MemoryRoomStore, RoomStore
from gateway.server import HANDLER_ARGS, serve_until_signalled
from gateway.shows import create_show
from gateway.stripes import StripePicker
from gateway.webhooks import add_webhook_routes
from infra.settings import Settings
from infra.topics import partition_for

logger = logging.getLogger(__name__)

CLIENT_MAX_SIZE_BYTES: Final = 1024 * 1024
AVAILABILITY_MAX_AGE_SECONDS: Final = 1


def create_app(
    settings: Settings,
    bus: CommandSender,
    waiter: OutcomeSource,
    availability: AvailabilitySource,
    holds: HoldSource,
    breaker: CircuitBreaker | None = None,
    room_store: RoomStore | None = None,
    clock: Callable[[], float] = time.time,
    partition_of: Callable[[str], int] | None = None,
) -> web.Application:
    """The gateway app around the given command sender, outcomes and read side.

    ``room_store`` is shared by every instance (a fresh in-memory one if None);
    ``clock`` is the wall clock of the waiting room and the buckets (seconds);
    ``partition_of`` routes keys as ``bus`` does (the stable hash if None).
    """
    app = web.Application(
        middlewares=[metrics_middleware, problem_middleware, limit_middleware],
        client_max_size=CLIENT_MAX_SIZE_BYTES,
        handler_args=HANDLER_ARGS,
    )
    app[BUS] = GuardedSender(bus, breaker or CircuitBreaker())
    app[OUTCOMES] = waiter
    app[AVAILABILITY] = AvailabilityCache(
        availability, settings.availability_cache_ttl_seconds
    )
    app[SHOW_SOURCE] = availability
    app[STRIPES] = StripePicker(availability, settings.availability_cache_ttl_seconds)
    app[HOLDS] = holds
    app[REPLY_TIMEOUT] = settings.gateway_reply_timeout_seconds
    app[PARTITIONS] = settings.command_partitions
    app[PARTITION_OF] = partition_of or partial(
        partition_for, partitions=settings.command_partitions
    )
    rooms = Rooms(
        room_store or MemoryRoomStore(),
        RoomConfig.from_settings(settings),
        LagMeter(),
        clock,
    )
    app[ROOMS] = rooms
    app.cleanup_ctx.append(lambda _: pumping(rooms))
    # The status poll is the hottest route: the server answers it before the
    # router (same answer), and it is first in the router's linear match.
    app[SHORTCUT] = status_shortcut(rooms)
    room = "/v1/shows/{show_id}/waiting-room"
    app.router.add_get(f"{room}/status", queue_status)
    app.router.add_post("/v1/shows", create_show)
    app.router.add_get("/v1/shows/{show_id}/availability", get_availability)
    app.router.add_post("/v1/shows/{show_id}/sections/{section_id}/holds", place_hold)
    app.router.add_get("/v1/holds/{hold_id}", get_hold)
    app.router.add_post("/v1/holds/{hold_id}/release", release_hold)
    app.router.add_post("/v1/holds/{hold_id}/checkout", checkout_hold)
    app.router.add_put(room, open_room)
    app.router.add_post(f"{room}/challenge", issue_challenge)
    app.router.add_post(f"{room}/join", join)
    app.router.add_post(f"{room}/admission", admit)
    app.router.add_get("/problems/{slug}", describe_problem)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", get_metrics)
    add_webhook_routes(app, settings)
    return app


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process serves requests."""
    return json_response({"status": "ok"})


async def get_availability(request: web.Request) -> web.StreamResponse:
    """GET /v1/shows/{show_id}/availability, with a weak ETag and 304.

    The ETag covers the rows, not the lag; the current lag is in a header of every
    answer, 304 included (see ``gateway.availability``). While the read model is
    down, the last answer is served with ``Age`` and ``Projection-Stale: true``.
    """
    show_id = request.match_info["show_id"]
    if not valid_id(show_id):
        raise HttpProblem("show-not-found", "no show has this id")
    served = await request.app[AVAILABILITY].serve(show_id)
    view = served.value
    if not view.found:
        raise HttpProblem("show-not-found", "no section of this show is on sale")

    headers = {
        "ETag": view.etag,
        "Cache-Control": f"max-age={AVAILABILITY_MAX_AGE_SECONDS}",
        **staleness_headers(view.lag_seconds, served.stale_seconds),
    }
    if etag_matches(request.headers.get("If-None-Match"), view.etag):
        return web.Response(status=304, headers=headers)
    return body_response(view.body, headers=headers)


def run(
    settings: Settings,
    availability: AvailabilitySource,
    holds: HoldSource,
    room_store: RoomStore,
    read_side: ReadSideSource | None = None,
) -> None:
    """Serve the gateway with the real Kafka adapters until SIGINT or SIGTERM.

    The read sides (the projection readers) and the room store are built by the
    caller.
    """
    bus = CommandBus(settings)
    waiter = OutcomeWaiter(settings)
    app = create_app(
        settings,
        bus,
        waiter,
        availability,
        holds,
        room_store=room_store,
        partition_of=bus.partition,
    )
    if read_side is not None:  # seat maps and orders (gateway.read_views)
        add_read_routes(app, read_side, settings.availability_cache_ttl_seconds)

    async def kafka_adapters(app: web.Application) -> AsyncIterator[None]:
        waiter.start(asyncio.get_running_loop())
        bus.start()
        yield
        bus.close()
        waiter.stop()

    app.cleanup_ctx.append(kafka_adapters)
    # uvloop: about 1.5x the status polls per core of the asyncio loop here
    # (bench/waiting_room.py); the Kafka and Cassandra threads hand results over
    # with call_soon_threadsafe, which it supports.
    uvloop.run(
        serve_until_signalled(
            app,
            settings.gateway_host,
            settings.gateway_port,
            settings.gateway_listen_backlog,
        )
    )
