"""The simulated payment provider: its own aiohttp service, for tests and the demo.

::

    POST /v1/payments                  charge once per Idempotency-Key (the hold)
    GET  /v1/payments/{id}             a payment as it stands (reconciliation)
    POST /v1/payments/{id}/refunds     refund once per payment (Idempotency-Key)
    GET  /_sim/state                   payments, calls per key, charges, webhooks
    PUT  /_sim/behaviour               change latency, failures, outages, webhooks

Each final payment result and each refund is posted as a signed webhook
(``payments.signing``) to the configured URL, retried with backoff until it gets a
2xx, like real providers do. The behaviour (``Behaviour``) makes it slow and
flaky on purpose: latency, declines, 500s, answers withheld after the charge was
made (the caller times out, the money moved), outages, duplicate, delayed,
reordered and dropped webhooks. Randomness comes from one seeded generator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web

from infra.settings import Settings
from streams.payments.retry import RetryPolicy
from streams.payments.signing import SIGNATURE_HEADER, sign
from streams.payments.simulator import (
    IdempotencyConflict,
    PaymentStatus,
    SimEvent,
    SimulatedLedger,
    SimulatorError,
    UnknownPayment,
)

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS: Final = 5.0
WEBHOOK_RETRY: Final = RetryPolicy(max_attempts=8, base_seconds=0.2, max_seconds=2.0)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the simulated provider misbehaves; rates are probabilities in [0, 1]."""

    latency_seconds: float = 0.0
    decline_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_seconds: float = 30.0
    processing_rate: float = 0.0
    settle_seconds: float = 1.0
    outage: bool = False
    duplicate_webhooks: int = 0
    reorder_seconds: float = 0.0
    drop_webhook_rate: float = 0.0
    webhook_attempts: int = WEBHOOK_RETRY.max_attempts

    def changed(self, raw: dict[str, Any]) -> Behaviour:
        """A copy with the fields of ``raw`` changed; unknown names raise KeyError."""
        names = {f.name for f in dataclasses.fields(self)}
        values = {}
        for name, value in raw.items():
            if name not in names:
                raise KeyError(name)
            values[name] = type(getattr(self, name))(value)
        return dataclasses.replace(self, **values)


KEY: Final = web.AppKey("simulator", "Simulator")


class Simulator:
    """The ledger, its behaviour, and the webhooks on their way."""

    def __init__(
        self,
        secret: bytes,
        webhook_url: str,
        behaviour: Behaviour,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ledger = SimulatedLedger()
        self.secret = secret
        self.webhook_url = webhook_url
        self.behaviour = behaviour
        self.rng = rng
        self.sleep = sleep
        self.webhooks_delivered = 0
        self.webhooks_given_up = 0
        self.calls_refused = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def chance(self, rate: float) -> bool:
        """True with probability ``rate``."""
        return rate > 0 and self.rng.random() < rate

    def outcome(self) -> PaymentStatus:
        """How a new payment ends, drawn from the behaviour."""
        if self.chance(self.behaviour.processing_rate):
            return PaymentStatus.PROCESSING
        if self.chance(self.behaviour.decline_rate):
            return PaymentStatus.FAILED
        return PaymentStatus.SUCCEEDED

    def publish(self, events: list[SimEvent]) -> None:
        """Post each event's webhook, as many times and as late as behaviour says."""
        for event in events:
            if self.chance(self.behaviour.drop_webhook_rate):
                continue
            for _ in range(1 + self.behaviour.duplicate_webhooks):
                delay = self.rng.uniform(0.0, self.behaviour.reorder_seconds)
                self.spawn(self._deliver(event, delay))

    def settle_later(self, payment_id: str) -> None:
        """End a processing payment after ``settle_seconds``, with a webhook."""

        async def settle() -> None:
            await self.sleep(self.behaviour.settle_seconds)
            failed = self.chance(self.behaviour.decline_rate)
            outcome = PaymentStatus.FAILED if failed else PaymentStatus.SUCCEEDED
            self.publish(self.ledger.settle(payment_id, outcome))

        self.spawn(settle())

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: SimEvent, delay_seconds: float) -> None:
        """POST the webhook until a 2xx, with backoff; bounded by attempts."""
        await self.sleep(delay_seconds)
        for attempt in range(1, self.behaviour.webhook_attempts + 1):
            now = int(time.time())
            body = orjson.dumps(event.body(now))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, now, body),
            }
            if await self._post(body, headers):
                self.webhooks_delivered += 1
                return
            await self.sleep(WEBHOOK_RETRY.backoff_seconds(attempt, self.rng))
        self.webhooks_given_up += 1
        logger.warning("webhook given up", extra={"event_type": event.type})

    async def _post(self, body: bytes, headers: dict[str, str]) -> bool:
        """One webhook attempt; True on a 2xx."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self.webhook_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
            ) as response:
                return 200 <= response.status < 300
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        """Stop webhooks on their way and close the client session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def state(self) -> dict[str, Any]:
        """Everything a test checks: payments, calls and charges per key, webhooks."""
        ledger = self.ledger
        return {
            "payments": [p.body() for p in ledger.payments.values()],
            "create_calls": dict(ledger.create_calls),
            "charged": dict(ledger.charged_keys()),
            "refunds": dict(ledger.refunds_by_key),
            "events": len(ledger.events),
            "webhooks_delivered": self.webhooks_delivered,
            "webhooks_given_up": self.webhooks_given_up,
            "webhooks_in_flight": len(self._tasks),
            "calls_refused": self.calls_refused,
        }


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json"
    )


@web.middleware
async def misbehave(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Latency, outages and 500s on the payment API (never on /_sim)."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    sim = request.app[KEY]
    behaviour = sim.behaviour
    if behaviour.latency_seconds:
        await sim.sleep(behaviour.latency_seconds)
    if behaviour.outage:
        sim.calls_refused += 1
        return _json({"error": "provider unavailable"}, 503)
    if sim.chance(behaviour.error_rate):
        return _json({"error": "internal error"}, 500)
    try:
        return await handler(request)
    except UnknownPayment:
        return _json({"error": "no such payment"}, 404)
    except IdempotencyConflict:
        return _json({"error": "idempotency key reused"}, 409)
    except SimulatorError as exc:
        return _json({"error": str(exc)}, 409)


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise web.HTTPBadRequest(text="Idempotency-Key required")
    return key


async def create_payment(request: web.Request) -> web.Response:
    """POST /v1/payments: charge once per key; maybe withhold the answer."""
    sim = request.app[KEY]
    key = _idempotency_key(request)
    try:
        raw = orjson.loads(await request.read())
        amount_cents, currency = int(raw["amount_cents"]), str(raw["currency"])
        metadata = {str(k): str(v) for k, v in dict(raw.get("metadata", {})).items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _json({"error": "invalid payment request"}, 400)

    payment, events = sim.ledger.create(
        key, amount_cents, currency, metadata, sim.outcome()
    )
    sim.publish(events)
    if events == [] and payment.status is PaymentStatus.PROCESSING:
        if sim.ledger.create_calls[key] == 1:
            sim.settle_later(payment.payment_id)

    if sim.chance(sim.behaviour.timeout_rate):
        # The money moved, but the caller will stop waiting first.
        await sim.sleep(sim.behaviour.hang_seconds)
    return _json(payment.body())


async def find_payment(request: web.Request) -> web.Response:
    """GET /v1/payments?idempotency_key=...: the payment made under a key."""
    sim = request.app[KEY]
    payment_id = sim.ledger.by_key.get(request.query.get("idempotency_key", ""))
    if payment_id is None:
        raise UnknownPayment("no payment under this key")
    return _json(sim.ledger.payments[payment_id].body())


async def get_payment(request: web.Request) -> web.Response:
    """GET /v1/payments/{id}."""
    sim = request.app[KEY]
    payment_id = request.match_info["payment_id"]
    payment = sim.ledger.payments.get(payment_id)
    if payment is None:
        raise UnknownPayment(payment_id)
    return _json(payment.body())


async def refund_payment(request: web.Request) -> web.Response:
    """POST /v1/payments/{id}/refunds: at most one refund per payment."""
    sim = request.app[KEY]
    payment_id = request.match_info["payment_id"]
    refund_id, events = sim.ledger.refund(payment_id, _idempotency_key(request))
    sim.publish(events)
    return _json({"id": refund_id, "payment_id": payment_id, "status": "succeeded"})


async def get_state(request: web.Request) -> web.Response:
    """GET /_sim/state."""
    return _json(request.app[KEY].state())


async def put_behaviour(request: web.Request) -> web.Response:
    """PUT /_sim/behaviour: change some fields of the behaviour; the new one."""
    sim = request.app[KEY]
    try:
        sim.behaviour = sim.behaviour.changed(orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return _json({"error": f"invalid behaviour: {exc!r}"}, 400)
    return _json(dataclasses.asdict(sim.behaviour))


def create_sim_app(sim: Simulator) -> web.Application:
    """The provider's HTTP app around a simulator."""
    app = web.Application(middlewares=[misbehave])
    app[KEY] = sim

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await sim.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments", find_payment)
    app.router.add_get("/v1/payments/{payment_id}", get_payment)
    app.router.add_post("/v1/payments/{payment_id}/refunds", refund_payment)
    app.router.add_get("/_sim/state", get_state)
    app.router.add_put("/_sim/behaviour", put_behaviour)
    return app


def run(settings: Settings, behaviour: Behaviour, seed: int | None) -> None:
    """Serve the simulated provider on the settings' provider port until signalled."""
    from gateway.server import serve_until_signalled

    sim = Simulator(
        settings.webhook_secret.encode(),
        settings.webhook_target,
        behaviour,
        random.Random(seed),
    )
    logger.info(
        "simulated provider starting",
        extra={"port": settings.provider_port, "webhook_url": settings.webhook_target},
    )
    asyncio.run(
        serve_until_signalled(
            create_sim_app(sim), settings.provider_host, settings.provider_port
        )
    )
