"""The status poll ahead of the router answers as the routed handler does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.deps import ROOMS, SHORTCUT
from gateway.testing import Harness, serve
from tests.unit.test_gateway_queue import (
    OPENS_S,
    ROOM,
    Client,
    Clock,
    gateway_at,
    join,
    open_room,
    status,
)

UNSTABLE_HEADERS = {"Date", "Server", "Content-Length"}


@asynccontextmanager
async def routed(app: web.Application) -> AsyncIterator[Client]:
    """A client of the app on aiohttp's own runner: every request is routed."""
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def answers(client: Client, gateway: Harness, clock: Clock) -> list[Any]:
    """Polls: fine, 304, forged, missing, another show's, a bad id, admitted."""
    await open_room(client)
    ticket = (await join(client, "buyer-1"))["queue_ticket"]
    forged = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
    found = []
    first = await status(client, ticket)
    polls = [
        first,
        await status(client, ticket, first.headers["ETag"]),
        await status(client, forged),
        await client.get(f"{ROOM}/status"),
        await client.get(
            "/v1/shows/s2/waiting-room/status", headers={"Queue-Ticket": ticket}
        ),
        await client.get("/v1/shows/bad%20id/waiting-room/status"),
    ]
    clock.now = OPENS_S + 1
    await gateway.app[ROOMS].pump("s1")
    polls.append(await status(client, ticket))
    for response in polls:
        headers = {
            k: v for k, v in response.headers.items() if k not in UNSTABLE_HEADERS
        }
        found.append((response.status, headers, await response.read()))
    return found


async def test_the_shortcut_answers_every_poll_as_the_routed_handler_does() -> None:
    shortcut_clock, routed_clock = Clock(OPENS_S - 60), Clock(OPENS_S - 60)
    served, plain = gateway_at(shortcut_clock), gateway_at(routed_clock)
    calls = 0
    shortcut = served.app[SHORTCUT]

    def counting(request: web.Request) -> Any:
        nonlocal calls
        answer = shortcut(request)
        calls += answer is not None
        return answer

    served.app[SHORTCUT] = counting

    async with serve(served.app) as client:
        through_shortcut = await answers(client, served, shortcut_clock)
    async with routed(plain.app) as client:
        through_router = await answers(client, plain, routed_clock)

    assert through_shortcut == through_router
    assert [s for s, _, _ in through_router] == [200, 304, 401, 401, 401, 422, 200]
    assert orjson.loads(through_router[-1][2])["state"] == "admitted"
    assert calls == 6  # the %-escaped path went to the router


async def test_a_forged_ticket_is_refused_after_its_genuine_one_was_remembered() -> (
    None
):
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)

    async with serve(gateway.app) as client:
        await open_room(client)
        ticket = (await join(client, "buyer-1"))["queue_ticket"]
        genuine = [(await status(client, ticket)).status for _ in range(3)]
        body, key_id, signature = ticket.split(".")
        changed = [
            f"{body}.{key_id}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
            f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{key_id}.{signature}",
            f"{body}.{key_id}.{signature}=",
        ]
        forged = [await status(client, text) for text in changed]
        problems = [orjson.loads(await r.read())["type"] for r in forged]

    assert genuine == [200, 200, 200]
    assert [r.status for r in forged] == [401, 401, 401]
    assert set(problems) == {"/problems/invalid-queue-ticket"}


@pytest.mark.parametrize(
    ("method", "path", "routed_status"),
    [
        ("GET", f"{ROOM}/status?x=1", 401),
        ("POST", f"{ROOM}/status", 405),
        ("GET", "/v1/shows/s1/./waiting-room/status", 404),
        ("GET", "/v1/shows/s%31/waiting-room/status", 401),
        ("GET", f"{ROOM}/admission", 405),
        ("GET", "/healthz", 200),
    ],
)
async def test_the_shortcut_leaves_other_requests_to_the_router(
    method: str, path: str, routed_status: int
) -> None:
    gateway = gateway_at(Clock(OPENS_S - 60))
    seen: list[str] = []
    taken: list[str] = []
    shortcut = gateway.app[SHORTCUT]

    def watching(request: web.Request) -> Any:
        seen.append(request.raw_path)
        answer = shortcut(request)
        if answer is not None:
            taken.append(request.raw_path)
        return answer

    gateway.app[SHORTCUT] = watching

    async with serve(gateway.app) as client:
        answered = await raw_request(client, method, path)

    assert seen == [path]
    assert taken == []
    assert answered == routed_status


async def raw_request(client: Client, method: str, target: str) -> int:
    """The status of a request sent byte for byte (no client normalises it)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def test_the_shortcut_takes_a_token_from_the_address_bucket() -> None:
    gateway = gateway_at(
        Clock(OPENS_S - 60), gateway_ip_burst=2, gateway_ip_requests_per_second=0.001
    )

    async with serve(gateway.app) as client:
        polls = [await client.get(f"{ROOM}/status") for _ in range(3)]
        last = orjson.loads(await polls[-1].read())

    assert [r.status for r in polls] == [401, 401, 429]
    assert last["type"] == "/problems/rate-limited"
    assert "Retry-After" in polls[-1].headers
