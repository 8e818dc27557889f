"""The aiohttp application of the gateway: routes, dependencies and start-up.

::

    POST /v1/shows                                        create a show (admin)
    GET  /v1/shows/{show_id}/availability                 cached availability
    POST /v1/shows/{show_id}/sections/{section_id}/holds  place a hold
    GET  /v1/holds/{hold_id}                              a hold's outcome
    GET  /problems/{slug}                                 what a problem type means
    GET  /healthz                                         liveness

``create_app`` takes its dependencies, so tests hand it fakes; ``run`` builds the
Kafka adapters and serves until interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from gateway.availability import AvailabilityCache, etag_matches
from gateway.bus import CommandBus
from gateway.deps import AVAILABILITY, BUS, OUTCOMES, PARTITIONS, REPLY_TIMEOUT
from gateway.fields import valid_id
from gateway.holds import get_hold, place_hold
from gateway.http import body_response, json_response
from gateway.outcomes import OutcomeWaiter
from gateway.ports import AvailabilitySource, CommandSender, OutcomeSource
from gateway.problems import HttpProblem, describe_problem, problem_middleware
from gateway.shows import create_show
from infra.settings import Settings

logger = logging.getLogger(__name__)

CLIENT_MAX_SIZE_BYTES: Final = 1024 * 1024
AVAILABILITY_MAX_AGE_SECONDS: Final = 1


def create_app(
    settings: Settings,
    bus: CommandSender,
    waiter: OutcomeSource,
    availability: AvailabilitySource,
) -> web.Application:
    """The gateway app around the given command sender, outcomes and read side."""
    app = web.Application(
        middlewares=[problem_middleware], client_max_size=CLIENT_MAX_SIZE_BYTES
    )
    app[BUS] = bus
    app[OUTCOMES] = waiter
    app[AVAILABILITY] = AvailabilityCache(
        availability, settings.availability_cache_ttl_seconds
    )
    app[REPLY_TIMEOUT] = settings.gateway_reply_timeout_seconds
    app[PARTITIONS] = settings.command_partitions
    app.router.add_post("/v1/shows", create_show)
    app.router.add_get("/v1/shows/{show_id}/availability", get_availability)
    app.router.add_post("/v1/shows/{show_id}/sections/{section_id}/holds", place_hold)
    app.router.add_get("/v1/holds/{hold_id}", get_hold)
    app.router.add_get("/problems/{slug}", describe_problem)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process serves requests."""
    return json_response({"status": "ok"})


async def get_availability(request: web.Request) -> web.StreamResponse:
    """GET /v1/shows/{show_id}/availability, with a weak ETag and 304."""
    show_id = request.match_info["show_id"]
    if not valid_id(show_id):
        raise HttpProblem("show-not-found", "no show has this id")
    view = await request.app[AVAILABILITY].get(show_id)
    if not view.found:
        raise HttpProblem("show-not-found", "no section of this show is on sale")

    headers = {
        "ETag": view.etag,
        "Cache-Control": f"max-age={AVAILABILITY_MAX_AGE_SECONDS}",
    }
    if etag_matches(request.headers.get("If-None-Match"), view.etag):
        return web.Response(status=304, headers=headers)
    return body_response(view.body, headers=headers)


def run(settings: Settings, availability: AvailabilitySource) -> None:
    """Serve the gateway with the real Kafka adapters until interrupted.

    The availability source (the projection reader) is built by the caller.
    """
    bus = CommandBus(settings)
    waiter = OutcomeWaiter(settings)
    app = create_app(settings, bus, waiter, availability)

    async def kafka_adapters(app: web.Application) -> AsyncIterator[None]:
        waiter.start(asyncio.get_running_loop())
        bus.start()
        yield
        bus.close()
        waiter.stop()

    app.cleanup_ctx.append(kafka_adapters)
    web.run_app(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=None,
    )
