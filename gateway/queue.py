"""Waiting-room routes: open a room, challenge, join, poll, be admitted.

::

    PUT  /v1/shows/{show_id}/waiting-room            open or change a room (admin)
    POST /v1/shows/{show_id}/waiting-room/challenge  a proof-of-work puzzle
    POST /v1/shows/{show_id}/waiting-room/join       solve it: a queue ticket
    GET  /v1/shows/{show_id}/waiting-room/status     position, ETA, poll interval
    POST /v1/shows/{show_id}/waiting-room/admission  an admission token, once let in

A visitor is a buyer on a device (``Device-Id`` header). The status poll, the
hot path, lives in ``gateway.poll`` with what it shares with join and admission.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from gateway.admission import device_id, limit_device
from gateway.deps import ROOMS
from gateway.fields import Errors
from gateway.http import json_response, read_body, rfc3339_ms
from gateway.inputs import path_ids, require_json
from gateway.passes import (
    AdmissionToken,
    QueueTicket,
    sign_ticket,
    sign_token,
    ticket_id_for,
    token_id_for,
)
from gateway.poll import queue_status, read_queue_ticket, ticket_status
from gateway.pow import (
    Challenge,
    difficulty_bits,
    read_challenge,
    sign_challenge,
    solves,
)
from gateway.problems import HttpProblem
from gateway.room import Rooms
from gateway.signing import InvalidPass
from gateway.validation import parse_buyer, parse_json
from gateway.waiting_room import RoomState, join_slot

BODY_LIMIT_BYTES: Final = 4 * 1024
CHALLENGE_TTL_MS: Final = 120_000
JOIN_FIELDS: Final = {"buyer_id", "challenge", "solution"}
ROOM_FIELDS: Final = {"opens_at", "admit_per_second"}

__all__ = ["admit", "issue_challenge", "join", "open_room", "queue_status"]


async def _body(request: web.Request) -> Any:
    require_json(request)
    return parse_json(await read_body(request, BODY_LIMIT_BYTES))


async def _room(request: web.Request, show_id: str) -> RoomState:
    room = await request.app[ROOMS].get(show_id)
    if room is None:
        raise HttpProblem("waiting-room-not-found", "the show has no waiting room")
    return room


def room_body(room: RoomState) -> dict[str, Any]:
    """The public view of a room's settings."""
    return {
        "show_id": room.show_id,
        "opens_at": rfc3339_ms(room.opens_at_ms),
        "admit_per_second": room.admit_per_second,
    }


async def open_room(request: web.Request) -> web.Response:
    """PUT /v1/shows/{show_id}/waiting-room: opening time and outflow."""
    (show_id,) = path_ids(request, "show_id")
    rooms = request.app[ROOMS]
    opens_at_ms, rate = _parse_room(await _body(request), rooms.config.admit_per_second)
    room = await rooms.open(show_id, opens_at_ms, rate)
    return json_response(room_body(room))


def _parse_room(data: Any, default_rate: float) -> tuple[int, float]:
    errors = Errors()
    if not isinstance(data, dict):
        errors.add("", "an object with opens_at")
        errors.raise_if_any()
    for unknown in sorted(set(data) - ROOM_FIELDS):
        errors.add(unknown, "unknown field")
    opens_at_ms = 0
    try:
        moment = datetime.fromisoformat(str(data.get("opens_at")))
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        opens_at_ms = int(moment.timestamp() * 1000)
    except ValueError:
        errors.add("opens_at", "an RFC 3339 time with a zone, e.g. 2026-12-31T20:00Z")
    rate = data.get("admit_per_second", default_rate)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        errors.add("admit_per_second", "a positive number")
    errors.raise_if_any()
    return opens_at_ms, float(rate)


async def issue_challenge(request: web.Request) -> web.Response:
    """POST .../waiting-room/challenge: a puzzle sized to load and suspicion."""
    (show_id,) = path_ids(request, "show_id")
    device = device_id(request)
    buyer_id = parse_buyer(await _body(request))
    rooms = request.app[ROOMS]
    limit_device(rooms, device)
    await _room(request, show_id)
    config = rooms.config

    bits = difficulty_bits(
        config.pow_base_bits,
        config.pow_max_bits,
        rooms.joins.per_second,
        config.pow_target_joins_per_second,
        len(rooms.accounts_by_device.get(device, ())) + 1,
        bool(request.headers.get("User-Agent")),
    )
    expires_at_ms = rooms.now_ms() + CHALLENGE_TTL_MS
    challenge = Challenge(
        show_id, buyer_id, device, secrets.token_hex(8), bits, expires_at_ms
    )
    body = {
        "challenge": sign_challenge(config.keyring, challenge),
        "difficulty_bits": bits,
        "expires_at": rfc3339_ms(expires_at_ms),
    }
    return json_response(body, status=201)


async def join(request: web.Request) -> web.Response:
    """POST .../waiting-room/join: a solved challenge buys a queue ticket."""
    (show_id,) = path_ids(request, "show_id")
    device = device_id(request)
    buyer_id, challenge_text, solution = _parse_join(await _body(request))
    rooms = request.app[ROOMS]
    limit_device(rooms, device)
    room = await _room(request, show_id)
    now_ms = rooms.now_ms()
    _check_work(rooms, challenge_text, solution, show_id, buyer_id, device, now_ms)

    # The ticket id is the buyer's in this show whatever the session: joining
    # again draws the same early rank, and after opening only queues later.
    ticket = QueueTicket(
        ticket_id=ticket_id_for(rooms.config.secret, show_id, buyer_id),
        show_id=show_id,
        buyer_id=buyer_id,
        device_id=device,
        joined_at_ms=now_ms,
        expires_at_ms=now_ms + rooms.config.ticket_ttl_ms,
    )
    rooms.joins.note()
    if rooms.note_first_join(show_id, buyer_id):
        await rooms.store.count_join(show_id, join_slot(now_ms, room.opens_at_ms))
    text = sign_ticket(rooms.config.keyring, ticket)
    body = {
        "queue_ticket": text,
        "status_url": f"/v1/shows/{show_id}/waiting-room/status",
        **ticket_status(rooms, room, ticket),
    }
    return json_response(body, status=201)


def _parse_join(data: Any) -> tuple[str, str, str]:
    errors = Errors()
    if not isinstance(data, dict):
        errors.add("", "an object with buyer_id, challenge and solution")
        errors.raise_if_any()
    for unknown in sorted(set(data) - JOIN_FIELDS):
        errors.add(unknown, "unknown field")
    for name in ("challenge", "solution"):
        if not isinstance(data.get(name), str):
            errors.add(name, "a string")
    errors.raise_if_any()
    buyer_id = parse_buyer({"buyer_id": data.get("buyer_id")})
    return buyer_id, data["challenge"], data["solution"]


def _check_work(
    rooms: Rooms,
    text: str,
    solution: str,
    show_id: str,
    buyer_id: str,
    device: str,
    now_ms: int,
) -> None:
    """Refuse a challenge that is not genuine, not this visitor's, or unsolved."""
    try:
        challenge = read_challenge(rooms.config.keyring, text, show_id, now_ms)
    except InvalidPass as exc:
        raise HttpProblem("proof-of-work-failed", str(exc)) from exc
    if (challenge.buyer_id, challenge.device_id) != (buyer_id, device):
        raise HttpProblem("proof-of-work-failed", "the challenge is another visitor's")
    if not solves(text, solution, challenge.bits):
        raise HttpProblem("proof-of-work-failed", "the solution does not solve it")
    rooms.note_device_account(device, buyer_id)


async def admit(request: web.Request) -> web.Response:
    """POST .../waiting-room/admission: a ticket the mark passed gets a token."""
    (show_id,) = path_ids(request, "show_id")
    device = device_id(request)
    rooms = request.app[ROOMS]
    ticket = read_queue_ticket(rooms, request.headers.get("Queue-Ticket"), show_id)
    if ticket.device_id != device:
        raise HttpProblem("invalid-queue-ticket", "the ticket is another device's")
    room = await _room(request, show_id)
    status = ticket_status(rooms, room, ticket)
    if status["state"] != "admitted":
        retry = {"Retry-After": str(status["poll_after_seconds"])}
        raise HttpProblem("not-admitted", "not admitted yet", headers=retry)

    config = rooms.config
    # Many accounts on one device are the cheapest way to more tickets than a
    # buyer may have: a device is admitted as a few buyers per show at most. A
    # buyer admitted again (a retry, another instance) is counted once.
    device_quota = f"device-admissions:{show_id}:{device}"
    if not await rooms.store.use_quota(
        device_quota, ticket.buyer_id, config.admissions_per_device
    ):
        raise HttpProblem(
            "device-limit-reached",
            f"this device was admitted as {config.admissions_per_device} buyers"
            " in this show already",
        )
    token = AdmissionToken(
        token_id=token_id_for(config.secret, show_id, ticket.buyer_id),
        show_id=show_id,
        buyer_id=ticket.buyer_id,
        device_id=device,
        hold_quota=config.hold_quota,
        expires_at_ms=rooms.now_ms() + config.admission_ttl_ms,
    )
    body = {
        "admission_token": sign_token(config.keyring, token),
        "expires_at": rfc3339_ms(token.expires_at_ms),
        "hold_quota": token.hold_quota,
    }
    return json_response(body, status=201)
