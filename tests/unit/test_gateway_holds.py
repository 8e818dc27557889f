"""Hold routes: idempotency keys, outcomes, retries, 202 and later reads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from commands.buyers import buyer_key
from commands.model import (
    Command,
    Event,
    HoldPlaced,
    HoldRejected,
    IdempotencyKeyReused,
    RejectionReason,
    RequestHold,
)
from gateway.holds import hold_command_id
from gateway.testing import admission_headers, harness, serve

HOLD_PATH = "/v1/shows/s1/sections/a/holds"
GA_HOLD = {"buyer_id": "buyer-1", "quantity": 2}


def place(command: Command) -> list[Event]:
    """A fake core that places every hold for ten minutes."""
    if not isinstance(command, RequestHold):
        return []
    return [
        HoldPlaced(
            command_id=command.command_id,
            occurred_at_ms=command.issued_at_ms,
            hold_id=command.command_id,
            show_id=command.show_id,
            section_id=command.section_id,
            buyer_id=command.buyer_id,
            seat_ids=command.seat_ids,
            quantity=command.quantity or len(command.seat_ids),
            expires_at_ms=1_700_000_600_000,
        )
    ]


def refuse(reason: RejectionReason) -> Any:
    """A fake core that refuses every hold for one reason."""

    def decide(command: Command) -> list[Event]:
        if not isinstance(command, RequestHold):
            return []
        return [
            HoldRejected(
                command.command_id,
                command.issued_at_ms,
                command.show_id,
                command.section_id,
                command.buyer_id,
                reason,
                "refused",
            )
        ]

    return decide


def key(
    value: str = "key-1", show_id: str = "s1", buyer_id: str = "buyer-1"
) -> dict[str, str]:
    """An Idempotency-Key header, with the buyer's admission to the show."""
    return {"Idempotency-Key": value, **admission_headers(show_id, buyer_id)}


async def test_hold_answers_201_with_location_when_placed() -> None:
    gateway = harness(place)
    hold_id = hold_command_id("buyer-1", "key-1")

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == 201
    assert response.headers["Location"] == f"/v1/holds/{hold_id}"
    assert body == {
        "hold_id": hold_id,
        "status": "held",
        "show_id": "s1",
        "section_id": "a",
        "seat_ids": [],
        "quantity": 2,
        "expires_at": "2023-11-14T22:23:20.000Z",
    }
    [(sent_key, (command,))] = gateway.bus.sent
    assert sent_key == buyer_key("s1", "buyer-1"), "the buyers' ledger decides first"
    assert isinstance(command, RequestHold) and command.command_id == hold_id


async def test_hold_answers_400_problem_when_idempotency_key_is_missing() -> None:
    gateway = harness(place)

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD)
        body = orjson.loads(await response.read())

    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert body["type"] == "/problems/missing-idempotency-key"
    assert gateway.bus.sent == []


@pytest.mark.parametrize("bad", ["", "x" * 129, "tab\there", "caf\u00e9"])
async def test_hold_answers_400_problem_when_idempotency_key_is_invalid(
    bad: str,
) -> None:
    gateway = harness(place)
    headers = {"Idempotency-Key": bad.encode().decode("latin-1")}

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=headers)
        body = orjson.loads(await response.read())

    assert response.status == 400
    assert body["type"] == "/problems/invalid-idempotency-key"


async def test_hold_answers_400_and_sends_nothing_when_two_keys_are_sent() -> None:
    gateway = harness(place)
    headers = [*key("d1").items(), ("Idempotency-Key", "d2")]

    async with serve(gateway.app) as client:
        response = await client.post(
            HOLD_PATH, json=GA_HOLD, headers=CIMultiDict(headers)
        )
        body = orjson.loads(await response.read())

    assert response.status == 400
    assert body["type"] == "/problems/invalid-idempotency-key"
    assert gateway.bus.sent == []


@pytest.mark.parametrize(
    ("reason", "status", "type_"),
    [
        (RejectionReason.SOLD_OUT, 409, "/problems/sold-out"),
        (RejectionReason.SEAT_UNAVAILABLE, 409, "/problems/seat-unavailable"),
        (RejectionReason.UNKNOWN_SEAT, 409, "/problems/unknown-seat"),
        (RejectionReason.UNKNOWN_SECTION, 409, "/problems/unknown-section"),
        (RejectionReason.BUYER_LIMIT_REACHED, 409, "/problems/buyer-limit-reached"),
        (RejectionReason.INVALID_REQUEST, 422, "/problems/invalid-request"),
    ],
)
async def test_hold_answers_its_problem_when_refused(
    reason: RejectionReason, status: int, type_: str
) -> None:
    gateway = harness(refuse(reason))

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert (body["type"], body["detail"], body["instance"]) == (
        type_,
        "refused",
        HOLD_PATH,
    )


async def test_retry_answers_the_first_outcome_and_sends_nothing_when_key_reused() -> (
    None
):
    gateway = harness(place)

    async with serve(gateway.app) as client:
        first = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        first_body = await first.read()
        retry = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        retry_body = await retry.read()

    assert (first.status, retry.status) == (201, 201)
    assert retry_body == first_body
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(gateway.bus.sent) == 1


async def test_retry_answers_422_when_key_is_reused_for_another_request() -> None:
    gateway = harness(place)
    other = {"buyer_id": "buyer-1", "quantity": 3}

    async with serve(gateway.app) as client:
        await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        response = await client.post(HOLD_PATH, json=other, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == 422
    assert body["type"] == "/problems/idempotency-key-reused"
    assert len(gateway.bus.sent) == 1


async def test_hold_answers_503_with_retry_after_when_the_log_is_down() -> None:
    gateway = harness(place)
    gateway.bus.down = True

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert body["type"] == "/problems/unavailable"


async def test_hold_answers_422_when_the_ledger_says_the_key_was_reused() -> None:
    def reused(command: Command) -> list[Event]:
        if not isinstance(command, RequestHold):
            return []
        return [
            IdempotencyKeyReused(
                command.command_id,
                command.issued_at_ms,
                command.show_id,
                command.section_id,
                command.buyer_id,
            )
        ]

    gateway = harness(reused)

    async with serve(gateway.app) as client:
        response = await client.post(
            HOLD_PATH, json=GA_HOLD, headers=key("k-elsewhere")
        )
        body = orjson.loads(await response.read())

    assert response.status == 422
    assert body["type"] == "/problems/idempotency-key-reused"
