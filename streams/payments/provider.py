"""The payment provider adapter interface, and the simulated provider's adapter.

The interface is the shape card processors with payment intents share: create a
payment under an idempotency key (the hold id, so any retry, by any worker, after
any crash, finds the first payment instead of charging again), look a payment up
for reconciliation, refund it under its own idempotency key, and tell our events
from a webhook body. A payment may be final at once or ``processing``; its final
state then arrives by webhook, or by polling when the webhook never comes.

Errors are translated here, once: no answer in time, a refused connection, 5xx or
429 become ``ProviderUnavailable`` (retryable); other 4xx ``ProviderRejected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
import orjson

from commands.errors import ProviderRejected, ProviderUnavailable, WebhookRefused
from commands.model import RecordPaymentResult
from streams.payments.simulator import PaymentStatus

PAYMENT_RESULT_PREFIX: Final = "payment-event:"


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What to charge for a hold: amount in minor units, where the hold lives."""

    hold_id: str
    show_id: str
    section_id: str
    amount_cents: int
    currency: str

    @property
    def idempotency_key(self) -> str:
        """The provider idempotency key: the hold, so a hold is charged once."""
        return self.hold_id

    def metadata(self) -> dict[str, str]:
        """What the provider echoes in its webhooks, to route the result."""
        return {
            "hold_id": self.hold_id,
            "show_id": self.show_id,
            "section_id": self.section_id,
        }


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """A payment as the provider reports it.

    ``event_id`` is the provider's id of the event that made it final, the same id
    its webhook carries; empty while processing.
    """

    payment_id: str
    status: PaymentStatus
    hold_id: str
    show_id: str
    section_id: str
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A final payment result from a webhook or a poll, routed to its hold."""

    event_id: str
    hold_id: str
    show_id: str
    section_id: str
    succeeded: bool


class PaymentProvider(Protocol):
    """A payment provider; one adapter per provider."""

    name: str

    async def create_payment(self, request: PaymentRequest) -> PaymentOutcome:
        """Charge once per idempotency key; a repeated call returns the first."""
        ...

    async def get_payment(self, payment_id: str) -> PaymentOutcome:
        """The payment as it stands now (reconciliation)."""
        ...

    async def find_payment(self, idempotency_key: str) -> PaymentOutcome | None:
        """The payment made under an idempotency key, if any (before a refund)."""
        ...

    async def refund(self, payment_id: str, refund_key: str) -> str:
        """Refund the payment once per refund key; the refund's id."""
        ...


def payment_result(event: PaymentEvent, issued_at_ms: int) -> RecordPaymentResult:
    """The inbox command of a result; its id comes from the provider's event id."""
    return RecordPaymentResult(
        command_id=PAYMENT_RESULT_PREFIX + event.event_id,
        issued_at_ms=issued_at_ms,
        show_id=event.show_id,
        section_id=event.section_id,
        hold_id=event.hold_id,
        provider_event_id=event.event_id,
        succeeded=event.succeeded,
    )


def outcome_event(outcome: PaymentOutcome) -> PaymentEvent | None:
    """The final result of an outcome, None while it is processing."""
    if outcome.status is PaymentStatus.PROCESSING or not outcome.event_id:
        return None
    return PaymentEvent(
        event_id=outcome.event_id,
        hold_id=outcome.hold_id,
        show_id=outcome.show_id,
        section_id=outcome.section_id,
        succeeded=outcome.status is PaymentStatus.SUCCEEDED,
    )


# --- the simulated provider ---------------------------------------------------------


class ProviderNotFound(ProviderRejected):
    """The provider has no such payment (404)."""


RESULT_TYPES: Final = {"payment.succeeded": True, "payment.failed": False}


def parse_simulated_event(body: bytes) -> PaymentEvent | None:
    """The payment result in a simulated provider's webhook; None for other types."""
    try:
        raw = orjson.loads(body)
        succeeded = RESULT_TYPES.get(raw["type"])
        if succeeded is None:
            return None
        metadata = raw["data"]["metadata"]
        event = PaymentEvent(
            event_id=_text(raw["id"]),
            hold_id=_text(metadata["hold_id"]),
            show_id=_text(metadata["show_id"]),
            section_id=_text(metadata["section_id"]),
            succeeded=succeeded,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise WebhookRefused("malformed_payload") from exc
    return event


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


class SimulatedProvider:
    """The adapter of ``infra.provider_sim`` over HTTP (aiohttp client)."""

    name = "simulated"

    def __init__(
        self, base_url: str, timeout_seconds: float, session: aiohttp.ClientSession
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session = session

    async def create_payment(self, request: PaymentRequest) -> PaymentOutcome:
        """POST /v1/payments with the hold as Idempotency-Key."""
        body = {
            "amount_cents": request.amount_cents,
            "currency": request.currency,
            "metadata": request.metadata(),
        }
        headers = {"Idempotency-Key": request.idempotency_key}
        return _outcome(await self._call("POST", "/v1/payments", body, headers))

    async def get_payment(self, payment_id: str) -> PaymentOutcome:
        """GET /v1/payments/{id}."""
        return _outcome(await self._call("GET", f"/v1/payments/{payment_id}"))

    async def find_payment(self, idempotency_key: str) -> PaymentOutcome | None:
        """GET /v1/payments?idempotency_key=..., None when it made none."""
        try:
            answer = await self._call(
                "GET", "/v1/payments", params={"idempotency_key": idempotency_key}
            )
        except ProviderNotFound:
            return None
        return _outcome(answer)

    async def refund(self, payment_id: str, refund_key: str) -> str:
        """POST /v1/payments/{id}/refunds with its own Idempotency-Key."""
        answer = await self._call(
            "POST",
            f"/v1/payments/{payment_id}/refunds",
            {},
            {"Idempotency-Key": refund_key},
        )
        return str(answer["id"])

    async def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One HTTP exchange, its errors translated to the provider error tree."""
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": "application/json", **(headers or {})},
                params=params,
                timeout=self._timeout,
            ) as response:
                payload = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"{method} {path}: HTTP {status}")
        if status == 404:
            raise ProviderNotFound(f"{method} {path}: HTTP 404")
        if status >= 400:
            raise ProviderRejected(f"{method} {path}: HTTP {status}")
        try:
            answer: dict[str, Any] = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderUnavailable(f"{method} {path}: unreadable answer") from exc
        return answer


def _outcome(answer: Mapping[str, Any]) -> PaymentOutcome:
    metadata = answer.get("metadata") or {}
    return PaymentOutcome(
        payment_id=str(answer["id"]),
        status=PaymentStatus(answer["status"]),
        hold_id=str(metadata.get("hold_id", "")),
        show_id=str(metadata.get("show_id", "")),
        section_id=str(metadata.get("section_id", "")),
        event_id=str(answer.get("event_id") or ""),
    )
