"""Case C2: a retry while the first request is still running.

The first hold takes a while to be decided (scaled from 2 s to 0.4 s). The same
key and body meanwhile answers 409 in flight with Retry-After; the same key with
another quantity, or on another route, answers 422 with no effect; afterwards
the first answer comes back byte for byte, marked as a replay. Twenty identical
requests at once send one command and have one winner.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson

from commands.model import Command, Event, RequestHold
from gateway.testing import Harness, harness, serve
from tests.unit.test_gateway_holds import HOLD_PATH, key, place

DECISION_SECONDS = 0.4


def slow_core(gateway: list[Harness]) -> object:
    """A core that decides each hold request only after DECISION_SECONDS."""

    def decide(command: Command) -> list[Event]:
        if isinstance(command, RequestHold):
            batch = {command.command_id: place(command)}
            loop = asyncio.get_running_loop()
            loop.call_later(DECISION_SECONDS, gateway[0].book.settle, batch)
        return []

    return decide


async def test_retries_get_in_flight_reuse_and_replay_when_the_first_is_slow() -> None:
    box: list[Harness] = []
    gateway = harness(slow_core(box), reply_timeout_seconds=2.0)  # type: ignore[arg-type]
    box.append(gateway)
    k1 = key("K1")
    body = {"buyer_id": "buyer-1", "quantity": 2}

    async with serve(gateway.app) as client:
        first = asyncio.create_task(client.post(HOLD_PATH, json=body, headers=k1))
        await asyncio.sleep(0.05)
        again = await client.post(HOLD_PATH, json=body, headers=k1)
        again_body = orjson.loads(await again.read())
        await asyncio.sleep(0.05)
        other_quantity = await client.post(
            HOLD_PATH, json={**body, "quantity": 3}, headers=k1
        )
        other_quantity_body = orjson.loads(await other_quantity.read())
        await asyncio.sleep(0.05)
        other_route = await client.post(
            "/v1/holds/h-any/release", json={"buyer_id": "buyer-1"}, headers=k1
        )
        await other_route.read()
        first_response = await first
        first_body = await first_response.read()
        later = await client.post(HOLD_PATH, json=body, headers=k1)
        later_body = await later.read()

    assert first_response.status == 201
    assert again.status == 409
    assert again.headers["Retry-After"] == "1"
    assert again_body["type"] == "/problems/request-in-flight"
    assert other_quantity.status == 422
    assert other_quantity_body["type"] == "/problems/idempotency-key-reused"
    assert other_route.status == 422
    assert later.status == 201
    assert later_body == first_body
    assert later.headers["Idempotent-Replayed"] == "true"
    sent = [c for _, batch in gateway.bus.sent for c in batch]
    assert len(sent) == 1, "one command for K1, whatever came after"


async def test_twenty_identical_requests_send_one_command_when_they_come_at_once() -> (
    None
):
    box: list[Harness] = []
    gateway = harness(slow_core(box), reply_timeout_seconds=2.0)  # type: ignore[arg-type]
    box.append(gateway)
    k2 = key("K2", buyer_id="buyer-2")
    body = {"buyer_id": "buyer-2", "quantity": 1}

    async with serve(gateway.app) as client:
        responses = await asyncio.gather(
            *(client.post(HOLD_PATH, json=body, headers=k2) for _ in range(20))
        )
        bodies = [orjson.loads(await r.read()) for r in responses]

    statuses = Counter(r.status for r in responses)
    assert statuses == {201: 1, 409: 19}
    assert {b.get("type") for b in bodies if "type" in b} == {
        "/problems/request-in-flight"
    }
    assert len(gateway.bus.sent) == 1
