"""Waiting-room routes: join with proof of work, poll, admission, holds."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from gateway.deps import ROOMS
from gateway.pow import solve
from gateway.testing import Harness, harness, serve
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, place

OPENS_AT = "2026-06-01T20:00:00Z"
OPENS_S = 1_780_344_000.0
ROOM = "/v1/shows/s1/waiting-room"

Client = TestClient[Any, Any]


class Clock:
    """A wall clock the test moves by hand (seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def gateway_at(clock: Clock, **changes: Any) -> Harness:
    return harness(place, wall_clock=clock, **{"gateway_pow_base_bits": 4, **changes})


async def open_room(client: Client, rate: float = 10.0) -> None:
    response = await client.put(
        ROOM, json={"opens_at": OPENS_AT, "admit_per_second": rate}
    )
    assert response.status == 200, await response.text()


async def join(client: Client, buyer: str, device: str = "dev-1") -> dict[str, Any]:
    """Ask for a challenge, solve it and join: the join's answer."""
    headers = {"Device-Id": device, "User-Agent": "test"}
    asked = await client.post(
        f"{ROOM}/challenge", json={"buyer_id": buyer}, headers=headers
    )
    puzzle = orjson.loads(await asked.read())
    assert asked.status == 201, puzzle
    solution = solve(puzzle["challenge"], puzzle["difficulty_bits"])
    joined = await client.post(
        f"{ROOM}/join",
        json={
            "buyer_id": buyer,
            "challenge": puzzle["challenge"],
            "solution": solution,
        },
        headers=headers,
    )
    body: dict[str, Any] = orjson.loads(await joined.read())
    assert joined.status == 201, body
    return body


async def status(client: Client, ticket: str, etag: str | None = None) -> Any:
    headers = {"Queue-Ticket": ticket}
    if etag is not None:
        headers["If-None-Match"] = etag
    return await client.get(f"{ROOM}/status", headers=headers)


async def admission(client: Client, ticket: str, device: str = "dev-1") -> Any:
    return await client.post(
        f"{ROOM}/admission", headers={"Queue-Ticket": ticket, "Device-Id": device}
    )


async def test_a_buyer_joins_waits_is_admitted_and_holds_when_the_mark_passes() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)

    async with serve(gateway.app) as client:
        await open_room(client)
        joined = await join(client, "buyer-1")
        ticket = joined["queue_ticket"]
        early = await admission(client, ticket)
        early_body = orjson.loads(await early.read())
        clock.now = OPENS_S + 1
        await gateway.app[ROOMS].pump("s1")
        polled = orjson.loads(await (await status(client, ticket)).read())
        admitted = await admission(client, ticket)
        token = orjson.loads(await admitted.read())["admission_token"]
        hold = await client.post(
            HOLD_PATH,
            json=GA_HOLD,
            headers={
                "Idempotency-Key": "k",
                "Admission-Token": token,
                "Device-Id": "dev-1",
            },
        )

    assert joined["state"] == "before_opening" and joined["position"] is None
    assert early.status == 403
    assert early_body["type"] == "/problems/not-admitted"
    assert polled["state"] == "admitted"
    assert admitted.status == 201
    assert hold.status == 201


async def test_status_answers_304_and_a_poll_interval_when_nothing_changed() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)

    async with serve(gateway.app) as client:
        await open_room(client)
        ticket = (await join(client, "buyer-1"))["queue_ticket"]
        first = await status(client, ticket)
        again = await status(client, ticket, first.headers["ETag"])
        clock.now = OPENS_S - 2
        moved = await status(client, ticket, first.headers["ETag"])

    assert first.status == 200
    assert first.headers["Retry-After"] == "30"
    assert again.status == 304 and again.headers["Retry-After"] == "30"
    assert moved.status == 200 and moved.headers["Retry-After"] == "1"


async def test_positions_follow_the_shuffle_and_the_mark_admits_a_prefix() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)
    buyers = [f"b{i}" for i in range(40)]

    async with serve(gateway.app) as client:
        await open_room(client, rate=10.0)
        tickets = {
            b: (await join(client, b, device=f"d{b}"))["queue_ticket"] for b in buyers
        }
        clock.now = OPENS_S + 2
        await gateway.app[ROOMS].pump("s1")
        answers = {
            b: orjson.loads(await (await status(client, t)).read())
            for b, t in tickets.items()
        }

    admitted = [b for b, a in answers.items() if a["state"] == "admitted"]
    waiting = sorted(
        (a["position"], b) for b, a in answers.items() if a["state"] == "waiting"
    )
    assert 17 <= len(admitted) <= 23, "10/s for 2 s of 40 early arrivals"
    assert admitted != buyers[: len(admitted)], "not in arrival order"
    assert [p for p, _ in waiting] == sorted(p for p, _ in waiting)
    assert all(
        a["eta_seconds"] >= 1 for a in answers.values() if a["state"] == "waiting"
    )


async def test_joining_again_keeps_the_same_ticket_id_and_early_place() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)

    async with serve(gateway.app) as client:
        await open_room(client)
        first = await join(client, "buyer-1", device="a")
        again = await join(client, "buyer-1", device="b")

    def ticket_id(text: str) -> str:
        from gateway.signing import Keyring
        from infra.settings import Settings

        ring = Keyring.parse(Settings().gateway_signing_keys)
        return str(ring.verify(text)["ticket_id"])

    assert ticket_id(first["queue_ticket"]) == ticket_id(again["queue_ticket"])
    assert gateway.rooms.joins["s1"] == {-1: 1}, "one buyer counted once"


async def test_a_join_is_refused_when_the_work_is_wrong_or_another_visitors() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock, gateway_pow_base_bits=16)
    headers = {"Device-Id": "dev-1", "User-Agent": "test"}

    async with serve(gateway.app) as client:
        await open_room(client)
        asked = await client.post(
            f"{ROOM}/challenge", json={"buyer_id": "buyer-1"}, headers=headers
        )
        challenge = orjson.loads(await asked.read())["challenge"]
        unsolved = await client.post(
            f"{ROOM}/join",
            json={"buyer_id": "buyer-1", "challenge": challenge, "solution": "0"},
            headers=headers,
        )
        borrowed = await client.post(
            f"{ROOM}/join",
            json={"buyer_id": "buyer-2", "challenge": challenge, "solution": "0"},
            headers=headers,
        )
        types = [orjson.loads(await a.read())["type"] for a in (unsolved, borrowed)]

    assert unsolved.status == borrowed.status == 403
    assert types == ["/problems/proof-of-work-failed"] * 2
    assert gateway.rooms.joins["s1"] == {}


async def test_difficulty_rises_for_a_device_that_joins_for_many_accounts() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)
    bits = []

    async with serve(gateway.app) as client:
        await open_room(client)
        for n in range(3):
            await join(client, f"bot-{n}", device="farm")
        asked = await client.post(
            f"{ROOM}/challenge",
            json={"buyer_id": "bot-9"},
            headers={"Device-Id": "farm", "User-Agent": "x"},
        )
        bits.append(orjson.loads(await asked.read())["difficulty_bits"])

    assert bits == [4 + 2 * 3]


async def test_status_is_refused_when_the_ticket_is_forged_or_missing() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock)

    async with serve(gateway.app) as client:
        await open_room(client)
        ticket = (await join(client, "buyer-1"))["queue_ticket"]
        body, key_id, signature = ticket.split(".")
        forged = await status(client, f"{body}x.{key_id}.{signature}")
        missing = await client.get(f"{ROOM}/status")
        forged_type = orjson.loads(await forged.read())["type"]

    assert forged.status == 401 and missing.status == 401
    assert forged_type == "/problems/invalid-queue-ticket"


async def test_a_show_without_a_room_answers_404_problem() -> None:
    gateway = gateway_at(Clock(OPENS_S))

    async with serve(gateway.app) as client:
        response = await client.post(
            f"{ROOM}/challenge", json={"buyer_id": "b"}, headers={"Device-Id": "d"}
        )
        problem = orjson.loads(await response.read())

    assert response.status == 404
    assert problem["type"] == "/problems/waiting-room-not-found"


async def test_a_device_asking_for_challenges_too_fast_gets_429() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(
        clock, gateway_device_burst=2, gateway_device_requests_per_second=0.5
    )
    headers = {"Device-Id": "farm", "User-Agent": "x"}

    async with serve(gateway.app) as client:
        await open_room(client)
        statuses = []
        for n in range(3):
            asked = await client.post(
                f"{ROOM}/challenge", json={"buyer_id": f"b{n}"}, headers=headers
            )
            statuses.append((asked.status, asked.headers.get("Retry-After")))

    assert statuses == [(201, None), (201, None), (429, "2")]


async def test_a_device_is_admitted_as_a_few_buyers_per_show_at_most() -> None:
    clock = Clock(OPENS_S - 60)
    gateway = gateway_at(clock, gateway_admissions_per_device=2)

    async with serve(gateway.app) as client:
        await open_room(client, rate=1000.0)
        tickets = {
            buyer: (await join(client, buyer, device))["queue_ticket"]
            for buyer, device in [
                ("acct-1", "farm"),
                ("acct-2", "farm"),
                ("acct-3", "farm"),
                ("human", "phone"),
            ]
        }
        clock.now = OPENS_S + 2
        await gateway.app[ROOMS].pump("s1")
        answers = {
            buyer: await admission(
                client, ticket, "phone" if buyer == "human" else "farm"
            )
            for buyer, ticket in tickets.items()
        }
        again = await admission(client, tickets["acct-1"], "farm")
        third = orjson.loads(await answers["acct-3"].read())

    assert {b: a.status for b, a in answers.items()} == {
        "acct-1": 201,
        "acct-2": 201,
        "acct-3": 403,
        "human": 201,
    }
    assert third["type"] == "/problems/device-limit-reached"
    assert again.status == 201
