"""The simulated provider's ledger: payments by idempotency key, refunds, events.

Pure and deterministic; ``infra.provider_sim`` wraps it in an HTTP service and adds
latency, failures, outages and webhook delivery. A payment goes through::

    processing ──► succeeded ──► (refunded once)
         └───────► failed

``create`` with a known idempotency key returns the first payment and charges
nothing again; the same key with another amount or currency is a conflict. A
payment has at most one refund, whatever refund keys are used.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class PaymentStatus(enum.StrEnum):
    """Where a payment stands at the provider."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class SimulatorError(Exception):
    """A request the simulated provider refuses (answered 4xx)."""


class IdempotencyConflict(SimulatorError):
    """An idempotency key reused for a different request."""


class UnknownPayment(SimulatorError):
    """No payment has this id."""


class RefundNotAllowed(SimulatorError):
    """Only a succeeded payment can be refunded."""


@dataclass(slots=True)
class SimPayment:
    """One payment, created once per idempotency key."""

    payment_id: str
    idempotency_key: str
    amount_cents: int
    currency: str
    metadata: dict[str, str]
    status: PaymentStatus
    refund_id: str | None = None
    event_id: str | None = None
    """Id of the event that made the payment final."""

    def body(self) -> dict[str, Any]:
        """The payment as the API shows it."""
        return {
            "id": self.payment_id,
            "idempotency_key": self.idempotency_key,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "metadata": dict(self.metadata),
            "status": self.status.value,
            "refund_id": self.refund_id,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class SimEvent:
    """A webhook event: its id, type and the payment as it was then."""

    event_id: str
    type: str
    payment: Mapping[str, Any]

    def body(self, created: int) -> dict[str, Any]:
        """The webhook body, sent at ``created`` (unix seconds)."""
        return {
            "id": self.event_id,
            "type": self.type,
            "created": created,
            "data": dict(self.payment),
        }


@dataclass
class SimulatedLedger:
    """Payments, refunds and the events they caused, in creation order."""

    payments: dict[str, SimPayment] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    refunds_by_key: dict[str, str] = field(default_factory=dict)
    create_calls: Counter[str] = field(default_factory=Counter)
    events: list[SimEvent] = field(default_factory=list)

    def create(
        self,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        metadata: Mapping[str, str],
        outcome: PaymentStatus,
    ) -> tuple[SimPayment, list[SimEvent]]:
        """The key's payment, created with ``outcome`` unless it exists; new events."""
        self.create_calls[idempotency_key] += 1
        known = self.by_key.get(idempotency_key)
        if known is not None:
            payment = self.payments[known]
            if (payment.amount_cents, payment.currency) != (amount_cents, currency):
                raise IdempotencyConflict("key reused with another amount")
            return payment, []

        payment = SimPayment(
            payment_id=f"pay_{len(self.payments) + 1}",
            idempotency_key=idempotency_key,
            amount_cents=amount_cents,
            currency=currency,
            metadata=dict(metadata),
            status=PaymentStatus.PROCESSING,
        )
        self.payments[payment.payment_id] = payment
        self.by_key[idempotency_key] = payment.payment_id
        if outcome is PaymentStatus.PROCESSING:
            return payment, []
        return payment, self.settle(payment.payment_id, outcome)

    def settle(self, payment_id: str, outcome: PaymentStatus) -> list[SimEvent]:
        """End a processing payment with ``outcome``; its event (none if settled)."""
        payment = self._payment(payment_id)
        if payment.status is not PaymentStatus.PROCESSING:
            return []
        if outcome is PaymentStatus.PROCESSING:
            raise ValueError("a payment settles as succeeded or failed")
        payment.status = outcome
        payment.event_id = f"evt_{len(self.events) + 1}"
        return [self._event(f"payment.{outcome.value}", payment)]

    def refund(self, payment_id: str, refund_key: str) -> tuple[str, list[SimEvent]]:
        """The payment's refund id, made on the first call only; new events."""
        known = self.refunds_by_key.get(refund_key)
        if known is not None:
            return known, []
        payment = self._payment(payment_id)
        if payment.status is not PaymentStatus.SUCCEEDED:
            raise RefundNotAllowed(f"payment is {payment.status.value}")
        if payment.refund_id is None:
            payment.refund_id = f"re_{len(self.refunds_by_key) + 1}"
            events = [self._event("refund.succeeded", payment)]
        else:
            events = []
        self.refunds_by_key[refund_key] = payment.refund_id
        return payment.refund_id, events

    def charged_keys(self) -> Counter[str]:
        """How many succeeded charges each idempotency key has (never above 1)."""
        return Counter(
            p.idempotency_key
            for p in self.payments.values()
            if p.status is PaymentStatus.SUCCEEDED
        )

    def _payment(self, payment_id: str) -> SimPayment:
        try:
            return self.payments[payment_id]
        except KeyError:
            raise UnknownPayment(f"no payment {payment_id}") from None

    def _event(self, event_type: str, payment: SimPayment) -> SimEvent:
        event = SimEvent(f"evt_{len(self.events) + 1}", event_type, payment.body())
        self.events.append(event)
        return event
