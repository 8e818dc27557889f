"""The simulated provider's ledger: one charge per key, one refund per payment."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streams.payments.simulator import (
    IdempotencyConflict,
    PaymentStatus,
    RefundNotAllowed,
    SimulatedLedger,
)

META = {"hold_id": "h1", "show_id": "s", "section_id": "ga"}


def test_create_returns_first_payment_and_no_event_when_key_is_repeated() -> None:
    ledger = SimulatedLedger()

    first, events = ledger.create("h1", 12000, "EUR", META, PaymentStatus.SUCCEEDED)
    again, more = ledger.create("h1", 12000, "EUR", META, PaymentStatus.FAILED)

    assert again is first and again.status is PaymentStatus.SUCCEEDED
    assert [e.type for e in events] == ["payment.succeeded"] and more == []
    assert first.event_id == events[0].event_id
    assert ledger.create_calls["h1"] == 2
    assert ledger.charged_keys() == {"h1": 1}


def test_create_refuses_a_key_when_reused_for_another_amount() -> None:
    ledger = SimulatedLedger()
    ledger.create("h1", 12000, "EUR", META, PaymentStatus.SUCCEEDED)

    with pytest.raises(IdempotencyConflict):
        ledger.create("h1", 99, "EUR", META, PaymentStatus.SUCCEEDED)


def test_settle_ends_a_processing_payment_once_when_called_twice() -> None:
    ledger = SimulatedLedger()
    payment, events = ledger.create("h1", 1, "EUR", META, PaymentStatus.PROCESSING)

    settled = ledger.settle(payment.payment_id, PaymentStatus.FAILED)
    again = ledger.settle(payment.payment_id, PaymentStatus.SUCCEEDED)

    assert events == [] and [e.type for e in settled] == ["payment.failed"]
    assert again == [] and payment.status is PaymentStatus.FAILED


def test_refund_is_made_once_when_asked_under_several_keys() -> None:
    ledger = SimulatedLedger()
    payment, _ = ledger.create("h1", 1, "EUR", META, PaymentStatus.SUCCEEDED)

    first, events = ledger.refund(payment.payment_id, "refund:h1")
    second, more = ledger.refund(payment.payment_id, "refund:h1")
    third, other = ledger.refund(payment.payment_id, "another-key")

    assert first == second == third
    assert [e.type for e in events] == ["refund.succeeded"]
    assert more == other == []


def test_refund_is_refused_when_the_payment_failed() -> None:
    ledger = SimulatedLedger()
    payment, _ = ledger.create("h1", 1, "EUR", META, PaymentStatus.FAILED)

    with pytest.raises(RefundNotAllowed):
        ledger.refund(payment.payment_id, "refund:h1")


class LedgerMachine(RuleBasedStateMachine):
    """Any mix of calls: never two charges for a key, never two refunds."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = SimulatedLedger()

    @rule(
        key=st.sampled_from(["h1", "h2", "h3"]),
        outcome=st.sampled_from(list(PaymentStatus)),
    )
    def create(self, key: str, outcome: PaymentStatus) -> None:
        self.ledger.create(key, 100, "EUR", META, outcome)

    @rule(
        key=st.sampled_from(["h1", "h2", "h3"]),
        outcome=st.sampled_from([PaymentStatus.SUCCEEDED, PaymentStatus.FAILED]),
    )
    def settle(self, key: str, outcome: PaymentStatus) -> None:
        payment_id = self.ledger.by_key.get(key)
        if payment_id is not None:
            self.ledger.settle(payment_id, outcome)

    @rule(key=st.sampled_from(["h1", "h2", "h3"]), refund_key=st.sampled_from("ab"))
    def refund(self, key: str, refund_key: str) -> None:
        payment_id = self.ledger.by_key.get(key)
        if payment_id is None:
            return
        try:
            self.ledger.refund(payment_id, refund_key + key)
        except RefundNotAllowed:
            assert self.ledger.payments[payment_id].status is not (
                PaymentStatus.SUCCEEDED
            )

    @invariant()
    def one_payment_and_at_most_one_refund_per_key(self) -> None:
        ledger = self.ledger
        assert len(ledger.payments) == len(ledger.by_key)
        assert all(n == 1 for n in ledger.charged_keys().values())
        refund_events = [e for e in ledger.events if e.type == "refund.succeeded"]
        refunded = [e.payment["id"] for e in refund_events]
        assert len(refunded) == len(set(refunded))
        final = [e.payment["id"] for e in ledger.events if e.type.startswith("pay")]
        assert len(final) == len(set(final))


TestLedgerMachine = LedgerMachine.TestCase
