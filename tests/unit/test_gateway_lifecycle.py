"""Release and checkout: the hold's section found, the verdict awaited, keys kept."""

from __future__ import annotations

import orjson
import pytest

from commands.model import (
    Checkout,
    CheckoutStarted,
    Command,
    CommandRejected,
    Event,
    HoldReleased,
    RejectionReason,
    ReleaseHold,
    ReleaseReason,
    RequestHold,
)
from gateway.inputs import buyer_command_id
from gateway.testing import harness, serve
from projections.holds import HoldStatus, HoldView
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, key, place

HOLD_ID = buyer_command_id("buyer-1", "key-1")
BUYER = {"buyer_id": "buyer-1"}
DEADLINE_MS = 1_800_000_000_000


def core(command: Command) -> list[Event]:
    """A fake core: places holds, releases and checks out buyer-1's holds."""
    if isinstance(command, RequestHold):
        return place(command)
    assert isinstance(command, ReleaseHold | Checkout)
    if command.buyer_id != "buyer-1":
        return [
            CommandRejected(
                command.command_id,
                1,
                command.show_id,
                command.section_id,
                type(command).__name__,
                RejectionReason.NOT_HOLD_OWNER,
                "the hold is another buyer's",
            )
        ]
    if isinstance(command, Checkout):
        return [
            CheckoutStarted(
                command.command_id,
                1,
                command.hold_id,
                command.show_id,
                command.section_id,
                command.buyer_id,
                DEADLINE_MS,
            )
        ]
    return [
        HoldReleased(
            command.command_id,
            1,
            command.hold_id,
            command.show_id,
            command.section_id,
            ReleaseReason.RELEASED_BY_BUYER,
            (),
            2,
        )
    ]


def projected_hold() -> HoldView:
    """buyer-1's hold as the read model has it (placed at another instance)."""
    return HoldView(
        HOLD_ID, "s1", "a", HoldStatus.HELD, 3, 9, 0, 1, "buyer-1", (), 2, DEADLINE_MS
    )


@pytest.mark.parametrize(
    ("step", "status", "expires_at"),
    [
        ("release", "released", None),
        ("checkout", "payment_pending", "2027-01-15T08:00:00.000Z"),
    ],
)
async def test_step_answers_200_with_the_new_state_when_the_core_agrees(
    step: str, status: str, expires_at: str | None
) -> None:
    gateway = harness(core)

    async with serve(gateway.app) as client:
        await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/{step}", json=BUYER, headers=key("key-2")
        )
        body = orjson.loads(await response.read())
        later = orjson.loads(await (await client.get(f"/v1/holds/{HOLD_ID}")).read())

    assert response.status == 200
    assert body == {
        "hold_id": HOLD_ID,
        "status": status,
        "show_id": "s1",
        "section_id": "a",
        "seat_ids": [],
        "quantity": 2,
        "expires_at": expires_at,
    }
    assert later["status"] == status
    key_sent, (command,) = gateway.bus.sent[-1]
    assert key_sent == "s1/a"
    assert command.command_id == buyer_command_id("buyer-1", "key-2")


async def test_release_finds_the_section_in_the_read_model_when_placed_elsewhere() -> (
    None
):
    gateway = harness(core)
    gateway.holds.holds[HOLD_ID] = projected_hold()

    async with serve(gateway.app) as client:
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/release", json=BUYER, headers=key("key-2")
        )

    assert response.status == 200
    [(sent_key, (command,))] = gateway.bus.sent
    assert sent_key == "s1/a"
    assert isinstance(command, ReleaseHold) and command.hold_id == HOLD_ID


async def test_step_answers_its_problem_when_the_core_refuses() -> None:
    gateway = harness(core)
    gateway.holds.holds[HOLD_ID] = projected_hold()

    async with serve(gateway.app) as client:
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/checkout",
            json={"buyer_id": "buyer-2"},
            headers=key("key-2", buyer_id="buyer-2"),
        )
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert body["type"] == "/problems/not-hold-owner"


async def test_step_answers_404_and_sends_nothing_when_the_hold_is_unknown() -> None:
    gateway = harness(core)

    async with serve(gateway.app) as client:
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/release", json=BUYER, headers=key("key-2")
        )
        body = orjson.loads(await response.read())

    assert response.status == 404
    assert body["type"] == "/problems/hold-not-found"
    assert gateway.bus.sent == []


async def test_step_answers_202_with_location_when_the_verdict_is_late() -> None:
    gateway = harness(None, reply_timeout_seconds=0.05)
    gateway.holds.holds[HOLD_ID] = projected_hold()

    async with serve(gateway.app) as client:
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/release", json=BUYER, headers=key("key-2")
        )

    assert response.status == 202
    assert response.headers["Location"] == f"/v1/holds/{HOLD_ID}"
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, BUYER, 400),
        (key("k"), {"buyer_id": "b", "extra": 1}, 422),
        (key("k"), {}, 422),
    ],
)
async def test_step_refuses_bad_input_when_posted(
    headers: dict[str, str], body: dict[str, object], status: int
) -> None:
    gateway = harness(core)

    async with serve(gateway.app) as client:
        response = await client.post(
            f"/v1/holds/{HOLD_ID}/release", json=body, headers=headers
        )

    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert gateway.bus.sent == []
