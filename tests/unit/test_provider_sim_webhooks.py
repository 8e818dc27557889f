"""The simulated provider's webhooks: signed, retried until 2xx, duplicated."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from infra.provider_sim import Behaviour, Simulator
from streams.payments.signing import SIGNATURE_HEADER, verify
from streams.payments.simulator import PaymentStatus

SECRET = b"sim-secret"


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def receiver(statuses: list[int]) -> tuple[TestServer, list[bytes]]:
    """A webhook endpoint answering ``statuses`` in turn (then 200), verifying."""
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify(SECRET, request.headers.get(SIGNATURE_HEADER), body, 0, 10**10)
        bodies.append(body)
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, bodies


async def settled(sim: Simulator) -> None:
    for _ in range(200):
        if not sim.state()["webhooks_in_flight"]:
            return
        await asyncio.sleep(0.01)
    pytest.fail("webhooks still in flight")


async def test_webhook_is_retried_until_2xx_when_the_receiver_fails_first() -> None:
    server, bodies = await receiver([503, 500])
    sim = Simulator(
        SECRET, str(server.make_url("/hook")), Behaviour(), random.Random(1), no_wait
    )

    _, events = sim.ledger.create("h1", 100, "EUR", {}, PaymentStatus.SUCCEEDED)
    sim.publish(events)
    await settled(sim)
    await sim.close()
    await server.close()

    assert len(bodies) == 3
    assert sim.state()["webhooks_delivered"] == 1


async def test_every_copy_is_signed_and_sent_when_duplicates_are_asked_for() -> None:
    server, bodies = await receiver([])
    behaviour = Behaviour(duplicate_webhooks=2, reorder_seconds=0.5)
    sim = Simulator(
        SECRET, str(server.make_url("/hook")), behaviour, random.Random(1), no_wait
    )

    _, events = sim.ledger.create("h1", 100, "EUR", {}, PaymentStatus.SUCCEEDED)
    sim.publish(events)
    await settled(sim)
    await sim.close()
    await server.close()

    assert len(bodies) == 3
    assert sim.state()["webhooks_delivered"] == 3


async def test_webhook_is_given_up_after_its_attempts_when_never_accepted() -> None:
    server, bodies = await receiver([500] * 10)
    behaviour = Behaviour(webhook_attempts=3)
    sim = Simulator(
        SECRET, str(server.make_url("/hook")), behaviour, random.Random(1), no_wait
    )

    _, events = sim.ledger.create("h1", 100, "EUR", {}, PaymentStatus.FAILED)
    sim.publish(events)
    await settled(sim)
    await sim.close()
    await server.close()

    assert len(bodies) == 3
    assert sim.state()["webhooks_given_up"] == 1


def test_behaviour_refuses_an_unknown_knob_when_changed() -> None:
    with pytest.raises(KeyError):
        Behaviour().changed({"speed": 1})
    assert Behaviour().changed({"duplicate_webhooks": 2.0}).duplicate_webhooks == 2
