"""The payments worker against the simulated provider on loopback.

The provider is the real adapter talking HTTP to the real simulator app; only the
Kafka sides (the inbox and the dead-letter topic) are recorded in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from commands.model import (
    CheckoutStarted,
    Command,
    RecordPaymentResult,
    RefundReason,
    RefundRequired,
)
from infra.provider_sim import Behaviour, Simulator, create_sim_app
from schemas.codec import encode_events, event_headers
from streams.payments.breaker import ProviderBreaker
from streams.payments.provider import SimulatedProvider
from streams.payments.retry import Retrier, RetryPolicy
from streams.payments.simulator import PaymentStatus
from streams.payments.worker import PaymentsWorker, SourceRecord

FAR_DEADLINE_MS = 4_000_000_000_000


@dataclass
class RecordingInbox:
    """The commands topic: what was sent, by key."""

    sent: list[tuple[str, tuple[Command, ...]]] = field(default_factory=list)

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        self.sent.append((key, tuple(commands)))


@dataclass
class RecordingDeadLetters:
    """The dead-letter topic: records with their headers."""

    records: list[tuple[bytes, bytes, dict[str, bytes]]] = field(default_factory=list)

    async def send(
        self, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        self.records.append((key, value, dict(headers)))


@dataclass
class Rig:
    """A worker wired to a simulator, and the recorded outputs."""

    sim: Simulator
    worker: PaymentsWorker
    inbox: RecordingInbox
    dead_letters: RecordingDeadLetters


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sim = Simulator(
        b"secret",
        "http://127.0.0.1:9/unused",
        Behaviour(drop_webhook_rate=1.0),
        random.Random(3),
    )
    server = TestServer(create_sim_app(sim), host="127.0.0.1")
    await server.start_server()
    inbox, dead_letters = RecordingInbox(), RecordingDeadLetters()
    async with aiohttp.ClientSession() as session:
        provider = SimulatedProvider(str(server.make_url("")), 0.3, session)
        retrier = Retrier(
            policy=RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.05),
            breaker=ProviderBreaker("simulated", 3, open_seconds=0.2),
            rng=random.Random(5),
        )
        worker = PaymentsWorker(provider, retrier, inbox, dead_letters, "EUR")
        yield Rig(sim, worker, inbox, dead_letters)
    await server.close()


def started(hold_id: str = "h1", deadline_ms: int = FAR_DEADLINE_MS) -> CheckoutStarted:
    return CheckoutStarted(
        f"k-{hold_id}", 1, hold_id, "s1", "ga", "buyer-1", deadline_ms, 2, 12000
    )


def record(*events: CheckoutStarted | RefundRequired, offset: int = 7) -> SourceRecord:
    return SourceRecord(
        "ticketing.events",
        3,
        offset,
        b"s1/ga",
        encode_events(list(events)),
        tuple(event_headers()),
    )


def results(inbox: RecordingInbox) -> list[RecordPaymentResult]:
    found = []
    for _, commands in inbox.sent:
        found += [c for c in commands if isinstance(c, RecordPaymentResult)]
    return found


async def test_request_is_charged_once_and_its_result_written_when_handled(
    rig: Rig,
) -> None:
    await rig.worker.handle_records([record(started())])

    (payment,) = rig.sim.ledger.payments.values()
    assert (payment.amount_cents, payment.currency) == (12000, "EUR")
    assert payment.idempotency_key == "h1"
    (result,) = results(rig.inbox)
    assert result.command_id == f"payment-event:{payment.event_id}"
    assert (result.hold_id, result.succeeded) == ("h1", True)
    assert rig.inbox.sent[0][0] == "s1/ga"


async def test_request_handled_again_charges_nothing_more_when_worker_restarted(
    rig: Rig,
) -> None:
    await rig.worker.handle_records([record(started())])

    await rig.worker.handle_records([record(started())])

    assert rig.sim.ledger.create_calls["h1"] == 2
    assert rig.sim.ledger.charged_keys() == {"h1": 1}
    first, second = results(rig.inbox)
    assert first == dataclasses.replace(second, issued_at_ms=first.issued_at_ms)


async def test_timed_out_call_is_retried_without_a_second_charge_when_money_moved(
    rig: Rig,
) -> None:
    rig.sim.behaviour = dataclasses.replace(
        rig.sim.behaviour, timeout_rate=1.0, hang_seconds=1.0
    )

    async def hang_once(seconds: float) -> None:
        rig.sim.behaviour = dataclasses.replace(rig.sim.behaviour, timeout_rate=0.0)
        await asyncio.sleep(seconds)

    rig.sim.sleep = hang_once

    await rig.worker.handle_records([record(started())])

    assert rig.sim.ledger.create_calls["h1"] == 2
    assert rig.sim.ledger.charged_keys() == {"h1": 1}
    assert len(results(rig.inbox)) == 1


async def test_declined_payment_is_recorded_as_failed_when_the_card_is_refused(
    rig: Rig,
) -> None:
    rig.sim.behaviour = dataclasses.replace(rig.sim.behaviour, decline_rate=1.0)

    await rig.worker.handle_records([record(started())])

    (result,) = results(rig.inbox)
    assert result.succeeded is False
    assert rig.sim.ledger.charged_keys() == {}


async def test_requests_wait_for_the_breaker_and_are_charged_when_an_outage_ends(
    rig: Rig,
) -> None:
    rig.sim.behaviour = dataclasses.replace(rig.sim.behaviour, outage=True)
    handling = asyncio.ensure_future(
        rig.worker.handle_records([record(started(f"h{n}")) for n in range(5)])
    )
    await asyncio.sleep(0.6)
    opened = rig.worker.retrier.breaker.times_opened
    waiting = not handling.done()

    rig.sim.behaviour = dataclasses.replace(rig.sim.behaviour, outage=False)
    await asyncio.wait_for(handling, 10)

    assert opened == 1 and waiting
    assert rig.dead_letters.records == []
    assert sorted(r.hold_id for r in results(rig.inbox)) == [f"h{n}" for n in range(5)]
    assert sum(rig.sim.ledger.charged_keys().values()) == 5


async def test_request_goes_to_dead_letters_when_its_deadline_passed(rig: Rig) -> None:
    await rig.worker.handle_records([record(started(deadline_ms=1), offset=42)])

    ((key, value, headers),) = rig.dead_letters.records
    assert (key, value) == (b"s1/ga", record(started(deadline_ms=1)).value)
    assert headers["reason"] == b"payment_deadline_passed"
    assert (headers["source-partition"], headers["source-offset"]) == (b"3", b"42")
    assert rig.sim.ledger.create_calls["h1"] == 0


async def test_request_goes_to_dead_letters_when_the_provider_refuses_it(
    rig: Rig,
) -> None:
    await rig.worker.handle_records([record(started())])
    conflicting = dataclasses.replace(started(), amount_cents=1)

    await rig.worker.handle_records([record(conflicting)])

    ((_, _, headers),) = rig.dead_letters.records
    assert headers["reason"] == b"provider_rejected"
    assert rig.sim.ledger.charged_keys() == {"h1": 1}


async def test_request_goes_to_dead_letters_when_attempts_run_out_while_up(
    rig: Rig,
) -> None:
    rig.sim.behaviour = dataclasses.replace(rig.sim.behaviour, error_rate=1.0)
    rig.worker.retrier.breaker = ProviderBreaker("simulated", 100, open_seconds=0.2)

    await rig.worker.handle_records([record(started())])

    ((_, _, headers),) = rig.dead_letters.records
    assert headers["reason"] == b"provider_attempts_exhausted"


async def test_undecodable_record_goes_to_dead_letters_when_consumed(rig: Rig) -> None:
    poison = dataclasses.replace(record(started()), value=b"\xff\xfe")

    await rig.worker.handle_records([poison])

    ((_, value, headers),) = rig.dead_letters.records
    assert value == b"\xff\xfe" and headers["reason"] == b"corrupt_record"


async def test_refund_is_issued_once_when_required_twice(rig: Rig) -> None:
    await rig.worker.handle_records([record(started())])
    refund = RefundRequired(
        "payment-event:e", 2, "h1", "s1", "ga", "e", RefundReason.HOLD_ENDED
    )

    await rig.worker.handle_records([record(refund)])
    await rig.worker.handle_records([record(refund)])

    (payment,) = rig.sim.ledger.payments.values()
    assert payment.refund_id is not None
    assert rig.sim.ledger.refunds_by_key == {"refund:h1": payment.refund_id}
    refunds = [e for e in rig.sim.ledger.events if e.type == "refund.succeeded"]
    assert len(refunds) == 1


async def test_processing_payment_is_recorded_by_polling_when_no_webhook_comes(
    rig: Rig,
) -> None:
    rig.sim.behaviour = dataclasses.replace(
        rig.sim.behaviour, processing_rate=1.0, settle_seconds=0.05
    )
    await rig.worker.handle_records([record(started())])
    assert results(rig.inbox) == []
    await asyncio.sleep(0.2)

    ended = await rig.worker.reconcile(older_than_seconds=0.0)

    assert ended == 1 and rig.worker.processing == {}
    (result,) = results(rig.inbox)
    (payment,) = rig.sim.ledger.payments.values()
    assert payment.status is PaymentStatus.SUCCEEDED
    assert result.provider_event_id == payment.event_id
