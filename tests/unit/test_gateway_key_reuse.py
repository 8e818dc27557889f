"""A key reused for another request after a refusal: 422, not the old refusal.

Found by schemathesis (tests/unit/test_openapi.py): a hold refused with one key
was answered, to a different request with the same key, with the first request's
refusal ("ask for a positive quantity" to a request for two places). A refusal
carries nothing that tells requests apart, so the first request's digest does.
"""

from __future__ import annotations

import dataclasses

import orjson

from commands.model import RejectionReason
from gateway.testing import harness, serve
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, key, refuse
from tests.unit.test_gateway_lifecycle import HOLD_ID, core, projected_hold


async def test_a_refused_hold_key_is_refused_when_reused_for_another_request() -> None:
    gateway = harness(refuse(RejectionReason.SOLD_OUT))

    async with serve(gateway.app) as client:
        first = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        other = await client.post(
            HOLD_PATH, json={**GA_HOLD, "quantity": 3}, headers=key()
        )
        again = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        other_body = orjson.loads(await other.read())
        again_body = orjson.loads(await again.read())

    assert first.status == 409
    assert other.status == 422
    assert other_body["type"] == "/problems/idempotency-key-reused"
    assert again.status == 409
    assert again_body["type"] == "/problems/sold-out"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(gateway.bus.sent) == 1


async def test_a_refused_release_key_is_refused_when_reused_for_another_hold() -> None:
    gateway = harness(core)
    other_hold = "0" * 32
    gateway.holds.holds[HOLD_ID] = projected_hold()
    gateway.holds.holds[other_hold] = dataclasses.replace(
        projected_hold(), hold_id=other_hold
    )
    buyer_2 = {"buyer_id": "buyer-2"}
    headers = key("key-2", buyer_id="buyer-2")

    async with serve(gateway.app) as client:
        first = await client.post(
            f"/v1/holds/{HOLD_ID}/release", json=buyer_2, headers=headers
        )
        other = await client.post(
            f"/v1/holds/{other_hold}/release", json=buyer_2, headers=headers
        )
        other_body = orjson.loads(await other.read())

    assert first.status == 409
    assert other.status == 422
    assert other_body["type"] == "/problems/idempotency-key-reused"
    assert len(gateway.bus.sent) == 1
