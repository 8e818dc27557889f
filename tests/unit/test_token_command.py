"""``ticketing token`` queues as a buyer until admitted, as an app would."""

from __future__ import annotations

import asyncio

import pytest

from gateway.testing import harness, serve
from infra.token_command import TokenError, admission_token

SHOW = "show-1"


async def test_the_command_queues_until_admitted_and_returns_a_working_token() -> None:
    gateway = harness(gateway_pow_base_bits=4)
    async with serve(gateway.app) as client:
        opened = await client.put(
            f"/v1/shows/{SHOW}/waiting-room",
            json={"opens_at": "2020-01-01T00:00:00Z", "admit_per_second": 100},
        )
        assert opened.status == 200, await opened.text()
        url = str(client.make_url("/"))
        said: list[str] = []

        token = await asyncio.to_thread(
            admission_token, url, SHOW, "buyer-1", "dev-1", 30.0, said.append
        )

        held = await client.post(
            f"/v1/shows/{SHOW}/sections/nope/holds",
            json={"buyer_id": "buyer-1", "quantity": 1},
            headers={
                "Admission-Token": token,
                "Device-Id": "dev-1",
                "Idempotency-Key": "k1",
            },
        )
        assert held.status not in (401, 403), await held.text()
        assert said and said[0].startswith("solving")


async def test_a_refused_step_names_its_problem() -> None:
    gateway = harness(gateway_pow_base_bits=4)
    async with serve(gateway.app) as client:
        url = str(client.make_url("/"))

        with pytest.raises(TokenError, match="challenge: 404"):
            await asyncio.to_thread(
                admission_token, url, "no-room", "b", "d", 5.0, lambda line: None
            )
