"""Where a queue ticket stands, and the status poll: the gateway's hottest route.

A status poll verifies the ticket, reads this instance's copy of the room (no
I/O once loaded) and answers with a weak ETag (304 while nothing changed) and
``Retry-After``, the suggested poll interval. What a ticket's answer needs and
cannot change while it lives is worked out once and remembered: its signature
check (``passes.VerifiedTickets``), its early rank (an HMAC, ``Rooms.rank``) and
the room's opening time as text. Show and expiry are checked on every poll.

``status_shortcut`` serves ``GET /v1/shows/{show_id}/waiting-room/status`` ahead
of the router: the same answer as the routed ``queue_status`` (the same address
bucket, the same problems), without resolving the route or building the
middleware chain, which was about a fifth of a poll's cost
(``bench/waiting_room.py``). Any other request goes on to the app.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.admission import limit_address
from gateway.deps import ROOMS, Shortcut
from gateway.http import rfc3339_ms
from gateway.inputs import path_ids
from gateway.passes import QueueTicket, read_ticket
from gateway.problems import HttpProblem, problem_middleware
from gateway.room import Rooms
from gateway.signing import InvalidPass
from gateway.waiting_room import (
    RoomState,
    eta_seconds,
    is_admitted,
    is_early,
    poll_after_seconds,
    position,
    queue_key,
)

STATUS_PATH: Final = re.compile(r"/v1/shows/([A-Za-z0-9_.-]{1,64})/waiting-room/status")
"""The status route's raw path; one with a query or a %-escape takes the router."""
STATUS_SUFFIX: Final = "/waiting-room/status"
STATUS_HEADERS: Final = {
    "Content-Type": "application/json",
    "Cache-Control": "private, no-cache",
}
ADMITTED: Final = {
    "state": "admitted",
    "position": 0,
    "eta_seconds": 0,
    "poll_after_seconds": 0,
}


def read_queue_ticket(rooms: Rooms, text: str | None, show_id: str) -> QueueTicket:
    """The genuine, unexpired queue ticket of this show; 401 otherwise."""
    if text is None:
        raise HttpProblem("invalid-queue-ticket", "send the Queue-Ticket header")
    config = rooms.config
    try:
        return read_ticket(
            config.keyring,
            text,
            show_id,
            rooms.now_ms(),
            config.leeway_ms,
            rooms.verified_tickets,
        )
    except InvalidPass as exc:
        raise HttpProblem("invalid-queue-ticket", str(exc)) from exc


def ticket_key(rooms: Rooms, room: RoomState, ticket: QueueTicket) -> float:
    """The ticket's place on the room's axis; the early rank is remembered."""
    if is_early(ticket.joined_at_ms, room.opens_at_ms):
        return rooms.rank(room.show_id, ticket.ticket_id)
    return queue_key(
        rooms.config.secret,
        room.show_id,
        ticket.ticket_id,
        ticket.joined_at_ms,
        room.opens_at_ms,
    )


def ticket_status(rooms: Rooms, room: RoomState, ticket: QueueTicket) -> dict[str, Any]:
    """Where the ticket stands: admitted, or position, ETA and poll interval."""
    key = ticket_key(rooms, room, ticket)
    if is_admitted(room, key):
        return dict(ADMITTED)
    now_ms = rooms.now_ms()
    opened = now_ms >= room.opens_at_ms
    ahead = position(room, key) if opened else None
    eta = eta_seconds(room, ahead) if ahead is not None else None
    return {
        "state": "waiting" if opened else "before_opening",
        "position": ahead,
        "eta_seconds": eta,
        "poll_after_seconds": poll_after_seconds(room, now_ms, eta or 0),
        "opens_at": opens_at_text(room.opens_at_ms),
    }


@functools.lru_cache(maxsize=1024)
def opens_at_text(opens_at_ms: int) -> str:
    """A room's opening time as RFC 3339, formatted once per room."""
    return rfc3339_ms(opens_at_ms)


async def status_answer(
    rooms: Rooms, show_id: str, ticket_text: str | None, if_none_match: str | None
) -> web.Response:
    """The status poll's answer: 200 with an ETag, or 304 if it still matches."""
    ticket = read_queue_ticket(rooms, ticket_text, show_id)
    room = await rooms.get(show_id)
    if room is None:
        raise HttpProblem("waiting-room-not-found", "the show has no waiting room")

    status = ticket_status(rooms, room, ticket)
    body = orjson.dumps(status)
    etag = f'W/"{hashlib.blake2b(body, digest_size=8).hexdigest()}"'
    headers = {
        **STATUS_HEADERS,
        "ETag": etag,
        "Retry-After": str(status["poll_after_seconds"]),
    }
    if if_none_match == etag:
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers)


async def queue_status(request: web.Request) -> web.StreamResponse:
    """GET .../waiting-room/status: stateless; ETag and 304, Retry-After."""
    (show_id,) = path_ids(request, "show_id")
    headers = request.headers
    return await status_answer(
        request.app[ROOMS],
        show_id,
        headers.get("Queue-Ticket"),
        headers.get("If-None-Match"),
    )


def status_shortcut(rooms: Rooms) -> Shortcut:
    """The status route ahead of the router, with the middleware's bucket."""

    async def limited(request: web.Request, show_id: str) -> web.StreamResponse:
        limit_address(rooms, request.remote)
        headers = request.headers
        return await status_answer(
            rooms, show_id, headers.get("Queue-Ticket"), headers.get("If-None-Match")
        )

    def shortcut(request: web.Request) -> Awaitable[web.StreamResponse] | None:
        # Cheapest test first: every other request pays for it.
        path = request.raw_path
        if not path.endswith(STATUS_SUFFIX) or request.method != "GET":
            return None
        found = STATUS_PATH.fullmatch(path)
        if found is None:
            return None
        return problem_middleware(request, functools.partial(limited, show_id=found[1]))

    return shortcut
