"""The payment provider's webhooks: verified, deduplicated, written to the inbox.

``POST /v1/payments/webhook`` takes the provider's signed event. In order:

1. the signature over the raw body must match the shared secret, with a signed
   time within the tolerance (``payments.signing``); else 400
   ``/problems/invalid-webhook`` and nothing is sent;
2. an event other than a payment result is acknowledged and ignored;
3. an event id this instance already wrote is acknowledged again (``duplicate``);
4. else ``RecordPaymentResult`` goes to the commands topic under the hold's
   section key, with a command id derived from the provider's event id, and the
   answer is 200 only once the log acknowledged it. A log that is down answers
   503, so the provider retries later.

Exactly-once does not rest on step 3: other instances, restarts and concurrent
copies may all send the same event; the section's writer decides a command id
once (docs/payments.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web

from commands.errors import WebhookRefused
from commands.inventory import section_key
from gateway.deps import BUS
from gateway.http import json_response, read_body
from gateway.problems import HttpProblem
from infra.settings import Settings
from streams.payments.dedup import DedupWindow
from streams.payments.provider import parse_simulated_event, payment_result
from streams.payments.signing import SIGNATURE_HEADER, verify

logger = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/v1/payments/webhook"
BODY_LIMIT_BYTES: Final = 64 * 1024

SECRET: Final = web.AppKey("webhook_secret", bytes)
TOLERANCE_SECONDS: Final = web.AppKey("webhook_tolerance_seconds", float)
SEEN: Final = web.AppKey("webhook_event_ids_seen", DedupWindow)
Clock = Callable[[], float]
"""Epoch seconds now."""
CLOCK: Final[web.AppKey[Clock]] = web.AppKey("webhook_clock")


def add_webhook_routes(
    app: web.Application, settings: Settings, clock: Callable[[], float] = time.time
) -> None:
    """Register the webhook route and what it needs on ``app``."""
    app[SECRET] = settings.webhook_secret.encode()
    app[TOLERANCE_SECONDS] = settings.webhook_tolerance_seconds
    app[SEEN] = DedupWindow()
    app[CLOCK] = clock
    app.router.add_post(WEBHOOK_PATH, receive_webhook)


async def receive_webhook(request: web.Request) -> web.Response:
    """POST /v1/payments/webhook: a provider event, verified then written once."""
    body = await read_body(request, BODY_LIMIT_BYTES)
    now = request.app[CLOCK]()
    try:
        verify(
            request.app[SECRET],
            request.headers.get(SIGNATURE_HEADER),
            body,
            now,
            request.app[TOLERANCE_SECONDS],
        )
        event = parse_simulated_event(body)
    except WebhookRefused as exc:
        logger.warning("webhook refused", extra={"reason": exc.reason})
        raise HttpProblem("invalid-webhook", exc.reason.replace("_", " ")) from exc
    if event is None:
        return json_response({"status": "ignored"})

    seen = request.app[SEEN]
    if seen.seen(event.event_id):
        return json_response({"status": "duplicate"})
    command = payment_result(event, int(now * 1000))
    await request.app[BUS].send(section_key(event.show_id, event.section_id), [command])
    seen.add(event.event_id)
    return json_response({"status": "accepted"})
