"""Cases C5 (deep links around the queue) and C6 (a bucket that lets a burst
through), plus the admission quota and the limits across two gateway instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.deps import ROOMS
from gateway.room_store import MemoryRoomStore
from gateway.testing import admission_headers, harness, serve
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, place
from tests.unit.test_gateway_queue import Clock

NOW_S = 1_780_000_000.0


def headers(key: str, **admission: Any) -> dict[str, str]:
    return {"Idempotency-Key": key, **admission}


def u(**changes: Any) -> dict[str, str]:
    """Buyer U's (buyer-1) admission to show s1 on its own device, or changed."""
    args: dict[str, Any] = {"show_id": "s1", "buyer_id": "buyer-1"} | changes
    return admission_headers(**args)


@pytest.mark.parametrize(
    ("name", "admission", "status", "type_"),
    [
        ("no token", lambda: {"Device-Id": "device-1"}, 401, "admission-required"),
        ("other show", lambda: u(show_id="s2"), 403, "admission-for-another-show"),
        (
            "expired",
            lambda: u(expires_at_ms=int(time.time() * 1000) - 60_000),
            401,
            "admission-expired",
        ),
        (
            "other session",
            lambda: {**u(), "Device-Id": "device-of-a-thief"},
            403,
            "admission-not-yours",
        ),
        ("other buyer", lambda: u(buyer_id="buyer-2"), 403, "admission-not-yours"),
        (
            "forged",
            lambda: {**u(), "Admission-Token": u()["Admission-Token"][:-3] + "AAA"},
            401,
            "invalid-admission-token",
        ),
    ],
)
async def test_c5_a_deep_link_is_refused_and_sends_nothing(
    name: str, admission: Callable[[], dict[str, str]], status: int, type_: str
) -> None:
    # Tokens are made when the test runs, not when it is collected: a suite that
    # runs longer than a token's life must not see them expired.
    gateway = harness(place)

    async with serve(gateway.app) as client:
        refused = await client.post(
            HOLD_PATH, json=GA_HOLD, headers=headers("k-bad", **admission())
        )
        problem = orjson.loads(await refused.read())
        own = await client.post(
            HOLD_PATH, json=GA_HOLD, headers=headers("k-own", **u())
        )

    assert (refused.status, problem["type"]) == (status, f"/problems/{type_}"), name
    assert own.status == 201, "U's own purchase is unaffected"
    assert len(gateway.bus.sent) == 1


async def test_c5_a_token_beyond_its_quota_is_refused_at_another_instance() -> None:
    store = MemoryRoomStore()
    first = harness(place, rooms=store, gateway_hold_quota=2)
    second = harness(place, rooms=store, gateway_hold_quota=2)
    settings = first.settings
    token = admission_headers("s1", "buyer-1", settings=settings)

    async with serve(first.app) as a, serve(second.app) as b:
        one = await a.post(HOLD_PATH, json=GA_HOLD, headers=headers("k1", **token))
        two = await b.post(HOLD_PATH, json=GA_HOLD, headers=headers("k2", **token))
        three = await b.post(HOLD_PATH, json=GA_HOLD, headers=headers("k3", **token))
        problem = orjson.loads(await three.read())
        retry = await b.post(HOLD_PATH, json=GA_HOLD, headers=headers("k1", **token))

    assert (one.status, two.status, three.status) == (201, 201, 403)
    assert problem["type"] == "/problems/admission-quota-exhausted"
    assert retry.status == 201, "a retry of a charged command costs no quota"
    sent = len(first.bus.sent) + len(second.bus.sent)
    assert sent == 3, "the refused hold reached no command topic"


async def test_c6_two_instances_share_the_buyers_bucket_at_its_boundaries() -> None:
    clock = Clock(NOW_S)
    store = MemoryRoomStore()
    limits = {"gateway_buyer_burst": 2, "gateway_buyer_commands_per_second": 0.2}
    instances = [
        harness(place, rooms=store, wall_clock=clock, **limits) for _ in range(2)
    ]
    token = u()
    answers = []

    async with serve(instances[0].app) as a, serve(instances[1].app) as b:
        for n, at in enumerate((0, 0.01, 0.02, 5.0, 5.01, 10.0)):
            clock.now = NOW_S + at
            client = (a, b)[n % 2]
            response = await client.post(
                HOLD_PATH, json=GA_HOLD, headers=headers(f"k{n}", **token)
            )
            answers.append((response.status, response.headers.get("Retry-After")))

    assert answers == [
        (201, None),
        (201, None),
        (429, "5"),
        (201, None),
        (429, "5"),
        (201, None),
    ]


async def test_an_address_over_its_bucket_gets_429_with_retry_after() -> None:
    clock = Clock(NOW_S)
    gateway = harness(
        place,
        wall_clock=clock,
        gateway_ip_burst=3,
        gateway_ip_requests_per_second=0.5,
    )

    async with serve(gateway.app) as client:
        answers = [
            (await client.get("/v1/shows/s1/availability")).status for _ in range(4)
        ]
        limited = await client.get("/v1/shows/s1/availability")
        problem = orjson.loads(await limited.read())
        health = await client.get("/healthz")

    assert answers == [404, 404, 404, 429]
    assert limited.headers["Retry-After"] == "2"
    assert problem["type"] == "/problems/rate-limited"
    assert health.status == 200, "only the API is limited"


async def test_the_global_bucket_limits_commands_of_all_buyers_together() -> None:
    clock = Clock(NOW_S)
    gateway = harness(
        place,
        wall_clock=clock,
        gateway_global_burst=2,
        gateway_global_commands_per_second=1.0,
    )

    async with serve(gateway.app) as client:
        statuses = []
        for n in range(3):
            buyer = f"buyer-{n}"
            response = await client.post(
                HOLD_PATH,
                json={"buyer_id": buyer, "quantity": 1},
                headers=headers(f"k{n}", **u(buyer_id=buyer)),
            )
            statuses.append(response.status)

    assert statuses == [201, 201, 429]
    assert len(gateway.bus.sent) == 2


async def test_holds_are_shed_with_503_when_the_write_path_lags() -> None:
    gateway = harness(place, gateway_lag_shed_seconds=2.0)
    gateway.app[ROOMS].lag.observe(3.2)

    async with serve(gateway.app) as client:
        response = await client.post(
            HOLD_PATH, json=GA_HOLD, headers=headers("k", **u())
        )
        problem = orjson.loads(await response.read())

    assert response.status == 503
    assert response.headers["Retry-After"] == "4"
    assert problem["type"] == "/problems/overloaded"
    assert gateway.bus.sent == []
