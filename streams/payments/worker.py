"""The payments worker: charges each payment request once, records each result.

It reads the event log (``read_committed``) as consumer group
``payments_group``. For each ``CheckoutStarted`` (the outbox's payment request)
it creates a payment at the provider with the hold as idempotency key, through
retries with jittered backoff and the provider's breaker (``payments.retry``), and
writes the final result to the inbox (``RecordPaymentResult`` on the commands
topic, command id from the provider's event id). For each ``RefundRequired`` it
refunds the hold's payment under the key ``refund:<hold>``. Offsets are committed
only after a whole poll is handled, so a worker killed between a provider call
and its record calls again after restart: the provider returns the first payment,
and the writer ignores a result it already decided (at-least-once towards an
idempotent receiver on both sides, docs/payments.md).

A request the provider refuses, that fails ``provider_max_attempts`` times while
the provider answers others, or whose payment deadline passes first, goes to the
dead-letter topic with the original record and a reason; the hold then lapses at
its deadline. While the breaker is open nothing is dropped: calls wait for it.
Payments still ``processing`` are polled until final (reconciliation), for when
their webhook never comes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from commands.errors import CodecError, ProviderError
from commands.inventory import section_key
from commands.model import CheckoutStarted, RefundRequired
from gateway.bus import CommandBus
from gateway.ports import CommandSender
from infra.metrics import serve as serve_metrics
from infra.settings import Settings
from infra.topics import (
    dead_letter_headers,
    dead_letters_topic,
    ensure_topics,
    events_topic,
)
from schemas.codec import decode_events
from streams.payments import metrics
from streams.payments.breaker import ProviderBreaker
from streams.payments.provider import (
    PaymentOutcome,
    PaymentProvider,
    PaymentRequest,
    SimulatedProvider,
    outcome_event,
    payment_result,
)
from streams.payments.retry import (
    AttemptsExhausted,
    DeadlinePassed,
    Retrier,
    RetryPolicy,
)

logger = logging.getLogger(__name__)

REFUND_KEY_PREFIX = "refund:"
POLL_MAX_RECORDS = 500


class DeadLetters(Protocol):
    """Where records go that the worker gives up on."""

    async def send(
        self, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Resolve once the dead-letter topic acknowledged the record."""
        ...


class NothingToRefund(ProviderError):
    """The provider has no payment for a hold whose refund is required."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """An event-log record as the worker got it: where from, key, value, headers."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def _reason(exc: ProviderError) -> str:
    if isinstance(exc, DeadlinePassed):
        return "payment_deadline_passed"
    if isinstance(exc, AttemptsExhausted):
        return "provider_attempts_exhausted"
    if isinstance(exc, NothingToRefund):
        return "nothing_to_refund"
    return "provider_rejected"


class PaymentsWorker:
    """Turns payment requests and refunds into provider calls and inbox records."""

    def __init__(
        self,
        provider: PaymentProvider,
        retrier: Retrier,
        inbox: CommandSender,
        dead_letters: DeadLetters,
        currency: str,
        concurrency: int = 32,
    ) -> None:
        self.provider = provider
        self.retrier = retrier
        self.inbox = inbox
        self.dead_letters = dead_letters
        self.currency = currency
        # TODO(limit): kept in memory; a payment still processing when the worker
        # restarts is only ended by its webhook. Rebuild the set from the log
        # (CheckoutStarted without a result) once providers answer "processing"
        # for more than a few percent of payments.
        self.processing: dict[str, float] = {}
        """Payments still processing at the provider, by id: when last looked at."""
        self._slots = asyncio.Semaphore(concurrency)

    async def handle_records(self, records: Sequence[SourceRecord]) -> None:
        """Handle a poll's records, concurrently up to the worker's bound."""
        await asyncio.gather(*(self.handle_record(r) for r in records))

    async def handle_record(self, record: SourceRecord) -> None:
        """Every payment request and refund in one event-log record."""
        try:
            events = decode_events(record.value, record.headers)
        except CodecError as exc:
            await self._dead_letter(record, exc.reason, str(exc))
            return
        for event in events:
            try:
                async with self._slots:
                    if isinstance(event, CheckoutStarted):
                        await self.request_payment(event)
                    elif isinstance(event, RefundRequired):
                        await self.issue_refund(event)
            except ProviderError as exc:
                await self._dead_letter(record, _reason(exc), str(exc))

    async def request_payment(self, started: CheckoutStarted) -> None:
        """Charge the hold once and record the result if it is final."""
        request = PaymentRequest(
            hold_id=started.hold_id,
            show_id=started.show_id,
            section_id=started.section_id,
            amount_cents=started.amount_cents,
            currency=self.currency,
        )
        outcome = await self.retrier.call(
            lambda: self.provider.create_payment(request),
            deadline=started.payment_deadline_ms / 1000,
        )
        await self.record(outcome)

    async def record(self, outcome: PaymentOutcome) -> None:
        """Write a final outcome to the inbox; keep a processing one for polling."""
        event = outcome_event(outcome)
        if event is None:
            self.processing.setdefault(outcome.payment_id, self.retrier.clock())
            return
        command = payment_result(event, int(self.retrier.clock() * 1000))
        await self.inbox.send(section_key(event.show_id, event.section_id), [command])
        self.processing.pop(outcome.payment_id, None)

    async def issue_refund(self, refund: RefundRequired) -> None:
        """Refund the hold's payment; the provider refunds a payment at most once."""
        payment = await self.retrier.call(
            lambda: self.provider.find_payment(refund.hold_id)
        )
        if payment is None:
            # TODO(limit): a refund for a payment the provider does not know needs
            # a person; it waits in dead letters until an operator tool exists.
            raise NothingToRefund("the provider has no payment for this hold")
        await self.retrier.call(
            lambda: self.provider.refund(
                payment.payment_id, REFUND_KEY_PREFIX + refund.hold_id
            )
        )

    async def reconcile(self, older_than_seconds: float) -> int:
        """Poll payments processing for longer than the bound; how many ended."""
        now = self.retrier.clock()
        due = [p for p, at in self.processing.items() if now - at >= older_than_seconds]
        ended = 0
        for payment_id in due:
            outcome = await self.retrier.call(
                partial(self.provider.get_payment, payment_id)
            )
            self.processing[payment_id] = now
            await self.record(outcome)
            ended += payment_id not in self.processing
        return ended

    async def _dead_letter(self, record: SourceRecord, reason: str, error: str) -> None:
        metrics.DEAD_LETTERS.labels(reason).inc()
        logger.warning(
            "payment record sent to dead letters",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )
        await self.dead_letters.send(
            record.key,
            record.value,
            [
                *record.headers,
                *dead_letter_headers(
                    reason, error, record.topic, record.partition, record.offset
                ),
            ],
        )


# --- the Kafka process ---------------------------------------------------------------


class KafkaDeadLetters:
    """Dead letters through an idempotent aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(
        self, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Append the record and wait for the acknowledgement."""
        await self._producer.send_and_wait(
            self._topic, value, key=key, headers=list(headers)
        )


def _source(message: Any) -> SourceRecord:
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key or b"",
        value=message.value or b"",
        headers=tuple(message.headers or ()),
    )


async def _reconcile_forever(worker: PaymentsWorker, interval_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await worker.reconcile(interval_seconds)
        except ProviderError as exc:
            logger.warning("reconciliation failed", extra={"error": str(exc)})


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Consume payment requests and refunds until ``stop`` is set."""
    consumer = AIOKafkaConsumer(
        events_topic(settings),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.payments_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True
    )
    inbox = CommandBus(settings)
    await producer.start()
    await consumer.start()
    inbox.start()
    try:
        async with aiohttp.ClientSession() as session:
            provider = SimulatedProvider(
                settings.provider_url, settings.provider_timeout_seconds, session
            )
            worker = PaymentsWorker(
                provider,
                _retrier(settings, provider.name),
                inbox,
                KafkaDeadLetters(producer, dead_letters_topic(settings)),
                settings.payment_currency,
                settings.payments_concurrency,
            )
            poller = asyncio.create_task(
                _reconcile_forever(worker, settings.payment_poll_interval_seconds)
            )
            logger.info("payments worker started", extra={"provider": provider.name})
            try:
                await _consume(consumer, worker, stop)
            finally:
                poller.cancel()
    finally:
        await consumer.stop()
        await producer.stop()
        inbox.close()


def _retrier(settings: Settings, provider_name: str) -> Retrier:
    breaker = ProviderBreaker(
        provider_name,
        settings.provider_breaker_failures,
        settings.provider_breaker_open_seconds,
    )
    metrics.watch_breaker(breaker)
    return Retrier(
        policy=RetryPolicy(
            max_attempts=settings.provider_max_attempts,
            base_seconds=settings.provider_backoff_base_seconds,
            max_seconds=settings.provider_backoff_max_seconds,
        ),
        breaker=breaker,
        rng=random.Random(),
    )


async def _consume(
    consumer: AIOKafkaConsumer, worker: PaymentsWorker, stop: asyncio.Event
) -> None:
    """Poll, handle the whole poll, commit; until stopped."""
    while not stop.is_set():
        polled = await consumer.getmany(timeout_ms=500, max_records=POLL_MAX_RECORDS)
        records = [_source(m) for messages in polled.values() for m in messages]
        if not records:
            continue
        await worker.handle_records(records)
        await consumer.commit()


def run(settings: Settings) -> None:
    """Run the payments worker until SIGINT or SIGTERM."""
    ensure_topics(settings)
    serve_metrics(
        metrics.REGISTRY, settings.metrics_host, settings.payments_metrics_port
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    logger.info("payments worker stopped")
