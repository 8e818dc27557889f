"""The webhook route: forged or stale refused, duplicates spared, results sent once."""

from __future__ import annotations

import time

import orjson
import pytest

from commands.inventory import section_key
from commands.model import RecordPaymentResult
from gateway.testing import Harness, harness, serve
from gateway.webhooks import CLOCK, SEEN, WEBHOOK_PATH
from infra.settings import Settings
from streams.payments.signing import SIGNATURE_HEADER, sign

SECRET = Settings().webhook_secret.encode()
NOW = 1_800_000_000.0


def event_body(event_id: str = "evt_1", kind: str = "payment.succeeded") -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": kind,
            "created": int(NOW),
            "data": {
                "id": "pay_1",
                "status": "succeeded",
                "metadata": {"hold_id": "h1", "show_id": "s1", "section_id": "ga"},
            },
        }
    )


def signed(body: bytes, secret: bytes = SECRET, at: float = NOW) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, int(at), body),
    }


def gateway() -> Harness:
    found = harness()
    found.app[CLOCK] = lambda: NOW
    return found


async def test_webhook_writes_one_result_under_the_holds_section_when_signed() -> None:
    gw = gateway()
    body = event_body()

    async with serve(gw.app) as client:
        response = await client.post(WEBHOOK_PATH, data=body, headers=signed(body))
        answer = await response.json()

    assert (response.status, answer) == (200, {"status": "accepted"})
    ((key, (command,)),) = gw.bus.sent
    assert key == section_key("s1", "ga")
    assert command == RecordPaymentResult(
        command_id="payment-event:evt_1",
        issued_at_ms=int(NOW * 1000),
        show_id="s1",
        section_id="ga",
        hold_id="h1",
        provider_event_id="evt_1",
        succeeded=True,
    )


async def test_webhook_sends_once_and_answers_2xx_when_an_event_id_comes_3_times() -> (
    None
):
    gw = gateway()
    body = event_body()

    async with serve(gw.app) as client:
        statuses = [
            (await client.post(WEBHOOK_PATH, data=body, headers=signed(body))).status
            for _ in range(3)
        ]

    assert statuses == [200, 200, 200]
    assert len(gw.bus.sent) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed(event_body(), secret=b"forger"),
        signed(event_body(), at=NOW - 301),
        signed(event_body(), at=NOW + 301),
        {SIGNATURE_HEADER: "t=1,v1=00"},
    ],
    ids=["unsigned", "forged", "replayed-late", "from-the-future", "garbage"],
)
async def test_webhook_is_refused_and_nothing_is_sent_when_not_the_providers(
    headers: dict[str, str],
) -> None:
    gw = gateway()

    async with serve(gw.app) as client:
        response = await client.post(WEBHOOK_PATH, data=event_body(), headers=headers)
        problem = await response.json()

    assert response.status == 400
    assert problem["type"] == "/problems/invalid-webhook"
    assert gw.bus.sent == [] and gw.bus.attempts == 0


async def test_webhook_is_refused_when_a_signed_body_was_altered() -> None:
    gw = gateway()
    headers = signed(event_body())
    altered = event_body().replace(b"payment.succeeded", b"payment.failed")

    async with serve(gw.app) as client:
        response = await client.post(WEBHOOK_PATH, data=altered, headers=headers)

    assert response.status == 400
    assert gw.bus.sent == []


async def test_webhook_is_acknowledged_and_ignored_when_not_a_payment_result() -> None:
    gw = gateway()
    body = event_body(kind="refund.succeeded")

    async with serve(gw.app) as client:
        response = await client.post(WEBHOOK_PATH, data=body, headers=signed(body))
        answer = await response.json()

    assert (response.status, answer) == (200, {"status": "ignored"})
    assert gw.bus.sent == []


async def test_webhook_is_refused_when_its_signed_body_is_not_an_event() -> None:
    gw = gateway()
    body = b'{"id": "evt_1", "type": "payment.succeeded"}'

    async with serve(gw.app) as client:
        response = await client.post(WEBHOOK_PATH, data=body, headers=signed(body))

    assert response.status == 400
    assert gw.bus.sent == []


async def test_webhook_gets_503_and_is_not_remembered_when_the_log_is_down() -> None:
    gw = gateway()
    gw.bus.down = True
    body = event_body()

    async with serve(gw.app) as client:
        down = await client.post(WEBHOOK_PATH, data=body, headers=signed(body))
        gw.bus.down = False
        gw.breaker.succeeded()
        retried = await client.post(WEBHOOK_PATH, data=body, headers=signed(body))

    assert down.status == 503 and "Retry-After" in down.headers
    assert retried.status == 200
    assert len(gw.bus.sent) == 1
    assert gw.app[SEEN].seen("evt_1")


def test_webhook_route_uses_the_wall_clock_when_built_by_create_app() -> None:
    clock = harness().app[CLOCK]

    assert abs(clock() - time.time()) < 5
