"""Release and checkout keys: replays, and keys reused across routes (case C2)."""

from __future__ import annotations

import orjson
import pytest

from gateway.testing import harness, serve
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, key
from tests.unit.test_gateway_lifecycle import BUYER, HOLD_ID, core, projected_hold


async def test_retry_replays_the_step_and_sends_nothing_when_the_key_is_reused() -> (
    None
):
    gateway = harness(core)
    path = f"/v1/holds/{HOLD_ID}/checkout"

    async with serve(gateway.app) as client:
        await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        first = await client.post(path, json=BUYER, headers=key("key-2"))
        first_body = await first.read()
        sent = len(gateway.bus.sent)
        retry = await client.post(path, json=BUYER, headers=key("key-2"))
        retry_body = await retry.read()

    assert (first.status, retry.status) == (200, 200)
    assert retry_body == first_body
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(gateway.bus.sent) == sent


@pytest.mark.parametrize("step", ["release", "checkout"])
async def test_step_answers_422_and_sends_nothing_when_the_key_placed_a_hold(
    step: str,
) -> None:
    gateway = harness(core)

    async with serve(gateway.app) as client:
        await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/{step}", json=BUYER, headers=key()
        )
        body = orjson.loads(await response.read())

    assert response.status == 422
    assert body["type"] == "/problems/idempotency-key-reused"
    assert len(gateway.bus.sent) == 1


async def test_checkout_answers_422_when_its_key_was_used_to_release() -> None:
    gateway = harness(core)
    gateway.holds.holds[HOLD_ID] = projected_hold()

    async with serve(gateway.app) as client:
        await client.post(f"/v1/holds/{HOLD_ID}/release", json=BUYER, headers=key("k"))
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/checkout", json=BUYER, headers=key("k")
        )

    assert response.status == 422
    assert len(gateway.bus.sent) == 1


async def test_step_answers_422_when_the_read_model_has_a_hold_of_this_key() -> None:
    gateway = harness(core)
    gateway.holds.holds[HOLD_ID] = projected_hold()

    async with serve(gateway.app) as client:
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/release", json=BUYER, headers=key()
        )

    assert response.status == 422
    assert gateway.bus.sent == []
