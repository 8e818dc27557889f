"""What became of a hold, from any instance: outcome cache, pending, read model.

The cases of a buyer who retries at another gateway instance or after a restart,
where this instance never saw the outcome but the holds read model has it.
"""

from __future__ import annotations

import orjson
import pytest

from commands.model import (
    CheckoutStarted,
    Command,
    Event,
    HoldReleased,
    HoldRequested,
    RejectionReason,
    ReleaseReason,
)
from gateway.holds import hold_command_id
from gateway.testing import harness, serve
from projections.holds import HoldStatus, HoldView
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, key, place, refuse

HOLD_ID = hold_command_id("buyer-1", "key-1")


def projected(
    status: HoldStatus = HoldStatus.HELD,
    quantity: int | None = 2,
    reason: str | None = None,
) -> HoldView:
    """The read model's row of buyer-1's GA hold placed with key-1."""
    return HoldView(
        hold_id=HOLD_ID,
        show_id="s1",
        section_id="a",
        status=status,
        log_partition=0,
        log_offset=7,
        log_index=0,
        updated_at_ms=1_700_000_000_000,
        buyer_id="buyer-1",
        seat_ids=(),
        quantity=quantity,
        expires_at_ms=1_700_000_600_000,
        reason=reason,
    )


async def test_get_answers_202_pending_then_201_when_the_outcome_comes_late() -> None:
    gateway = harness(None, reply_timeout_seconds=0.05)
    hold_id = hold_command_id("buyer-1", "key-1")

    async with serve(gateway.app) as client:
        pending = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        pending_body = orjson.loads(await pending.read())
        before = await client.get(pending.headers["Location"])
        before_body = orjson.loads(await before.read())
        [(_, (command,))] = gateway.bus.sent
        gateway.book.settle({hold_id: place(command)})
        later = await client.get(pending.headers["Location"])
        later_body = orjson.loads(await later.read())

    assert pending.status == 202
    assert pending.headers["Retry-After"] == "1"
    assert pending_body == {"hold_id": hold_id, "status": "pending"}
    assert (before.status, before.headers["Retry-After"]) == (202, "1")
    assert before_body == {"hold_id": hold_id, "status": "pending"}
    assert gateway.holds.calls == 2  # after the reply timeout, and at the poll
    assert later.status == 201
    assert (later_body["hold_id"], later_body["status"]) == (hold_id, "held")


async def test_get_hold_answers_problem_when_the_hold_was_refused() -> None:
    gateway = harness(refuse(RejectionReason.SOLD_OUT))
    hold_id = hold_command_id("buyer-1", "key-1")

    async with serve(gateway.app) as client:
        await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        response = await client.get(f"/v1/holds/{hold_id}")
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert body["type"] == "/problems/sold-out"


async def test_get_hold_answers_404_problem_when_the_hold_is_unknown() -> None:
    async with serve(harness().app) as client:
        response = await client.get("/v1/holds/0123")
        body = orjson.loads(await response.read())

    assert response.status == 404
    assert body["type"] == "/problems/hold-not-found"


@pytest.mark.parametrize(
    ("status", "expires_at"),
    [
        (HoldStatus.HELD, "2023-11-14T22:23:20.000Z"),
        (HoldStatus.PAYMENT_PENDING, "2023-11-14T22:23:20.000Z"),
        (HoldStatus.SOLD, None),
        (HoldStatus.RELEASED, None),
        (HoldStatus.EXPIRED, None),
    ],
)
async def test_get_hold_answers_from_the_read_model_when_this_instance_never_saw_it(
    status: HoldStatus, expires_at: str | None
) -> None:
    gateway = harness(place)
    gateway.holds.holds[HOLD_ID] = projected(status)

    async with serve(gateway.app) as client:
        response = await client.get(f"/v1/holds/{HOLD_ID}")
        body = orjson.loads(await response.read())

    assert response.status == 201
    assert body == {
        "hold_id": HOLD_ID,
        "status": str(status),
        "show_id": "s1",
        "section_id": "a",
        "seat_ids": [],
        "quantity": 2,
        "expires_at": expires_at,
    }


async def test_get_hold_answers_the_refusal_when_the_read_model_has_it_rejected() -> (
    None
):
    gateway = harness(place)
    gateway.holds.holds[HOLD_ID] = projected(
        HoldStatus.REJECTED, quantity=None, reason="sold_out"
    )

    async with serve(gateway.app) as client:
        response = await client.get(f"/v1/holds/{HOLD_ID}")
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert body["type"] == "/problems/sold-out"


def ledger_decided_it_before(command: Command) -> list[Event]:
    """The buyers' ledger gives no event for a request it already decided."""
    return []


async def test_retry_answers_the_recorded_hold_when_projected() -> None:
    gateway = harness(ledger_decided_it_before)
    gateway.holds.holds[HOLD_ID] = projected()

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == 201
    assert response.headers["Idempotent-Replayed"] == "true"
    assert (body["hold_id"], body["status"], body["quantity"]) == (HOLD_ID, "held", 2)
    assert len(gateway.bus.sent) == 1, "sent, and the ledger ignored it"


async def test_retry_answers_the_recorded_refusal_when_projected_as_rejected() -> None:
    gateway = harness(ledger_decided_it_before)
    gateway.holds.holds[HOLD_ID] = projected(
        HoldStatus.REJECTED, quantity=None, reason="buyer_limit_reached"
    )

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == 409
    assert response.headers["Idempotent-Replayed"] == "true"
    assert body["type"] == "/problems/buyer-limit-reached"
    assert len(gateway.bus.sent) == 1, "sent, and the ledger ignored it"


@pytest.mark.parametrize(
    ("path", "hold"),
    [
        (HOLD_PATH, {"buyer_id": "buyer-1", "quantity": 3}),
        ("/v1/shows/s1/sections/b/holds", GA_HOLD),
        (HOLD_PATH, {"buyer_id": "buyer-1", "seat_ids": ["A-1", "A-2"]}),
    ],
)
async def test_retry_answers_422_when_the_projected_hold_differs(
    path: str, hold: dict[str, object]
) -> None:
    gateway = harness(ledger_decided_it_before)
    gateway.holds.holds[HOLD_ID] = projected()

    async with serve(gateway.app) as client:
        response = await client.post(path, json=hold, headers=key())
        body = orjson.loads(await response.read())

    assert response.status == 422
    assert body["type"] == "/problems/idempotency-key-reused"
    assert len(gateway.bus.sent) == 1, "sent, and the ledger ignored it"


async def test_hold_is_sent_when_the_holds_read_model_is_down() -> None:
    gateway = harness(place)
    gateway.holds.down = True

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=key())

    assert response.status == 201
    assert len(gateway.bus.sent) == 1


async def test_get_hold_follows_later_events_when_this_instance_saw_them() -> None:
    gateway = harness(place)

    async with serve(gateway.app) as client:
        await client.post(HOLD_PATH, json=GA_HOLD, headers=key())
        started = CheckoutStarted(
            "c2", 2, HOLD_ID, "s1", "a", "buyer-1", 1_800_000_000_000
        )
        gateway.book.settle({"c2": [started]})
        pending = orjson.loads(await (await client.get(f"/v1/holds/{HOLD_ID}")).read())
        released = HoldReleased(
            "c3", 3, HOLD_ID, "s1", "a", ReleaseReason.PAYMENT_FAILED, (), 2
        )
        gateway.book.settle({"c3": [released]})
        ended = orjson.loads(await (await client.get(f"/v1/holds/{HOLD_ID}")).read())

    assert (pending["status"], pending["expires_at"]) == (
        "payment_pending",
        "2027-01-15T08:00:00.000Z",
    )
    assert (ended["status"], ended["expires_at"]) == ("released", None)
    assert gateway.holds.calls == 0, "a first request reads no read model"


async def test_get_hold_answers_404_when_the_id_is_not_an_id() -> None:
    gateway = harness()

    async with serve(gateway.app) as client:
        response = await client.get("/v1/holds/no%20such")

    assert response.status == 404
    assert gateway.holds.calls == 0


async def test_get_hold_answers_202_anywhere_once_the_ledger_passed_it_on() -> None:
    # Another instance sent the request; this one only saw the buyers' ledger
    # pass it on to its section, which has not decided yet.
    gateway = harness()
    requested = HoldRequested(HOLD_ID, 1, "s1", "a", "buyer-1", (), 2)

    async with serve(gateway.app) as client:
        gateway.book.settle({HOLD_ID: [requested]})
        response = await client.get(f"/v1/holds/{HOLD_ID}")
        body = orjson.loads(await response.read())

    assert (response.status, response.headers["Retry-After"]) == (202, "1")
    assert body == {"hold_id": HOLD_ID, "status": "pending"}
