"""Payments end to end on the real Kafka: agent, gateway, provider and worker.

Every process runs as production runs it (``ticketing agent``, ``gateway``,
``provider``, ``payments``), on loopback; the test plays the buyers through the
command log and drives the simulated provider through its ``/_sim`` routes.
Counted from the event log at the end of each test: every payment the provider
charged ends in exactly one TicketsSold or exactly one RefundRequired.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.model import (
    Checkout,
    CreateShow,
    Event,
    HoldReleased,
    PlaceHold,
    RefundRequired,
    SectionKind,
    SectionSpec,
    TicketsSold,
)
from infra.settings import Settings
from streams.payments.signing import SIGNATURE_HEADER, sign
from tests.integration.support import (
    read_events,
    send_commands,
    settings_env,
    start_agent,
    start_cli,
)

pytestmark = pytest.mark.integration

SHOW, GA = "pay-show", "floor"
PRICE_CENTS = 4500


class System:
    """The processes of one test and ways to talk to them."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.env = {
            **settings_env(settings),
            "TICKETING_PAYMENTS_GROUP": f"{settings.topic_prefix}-payments",
            "TICKETING_PROVIDER_BREAKER_FAILURES": "3",
            "TICKETING_PROVIDER_BREAKER_OPEN_SECONDS": "1",
            "TICKETING_PROVIDER_BACKOFF_MAX_SECONDS": "0.5",
            "TICKETING_PAYMENT_POLL_INTERVAL_SECONDS": "1",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        live = Settings.from_env()
        self.provider = f"http://127.0.0.1:{live.provider_port}"
        self.gateway = f"http://127.0.0.1:{live.gateway_port}"

    def start(self, name: str, *args: str, **env: str) -> None:
        log = self.logs / f"{name}.log"
        self.processes[name] = start_cli({**self.env, **env}, args, log)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()

    def behave(self, **changes: Any) -> None:
        request = urllib.request.Request(
            self.provider + "/_sim/behaviour",
            data=orjson.dumps(changes),
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200

    def provider_state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.provider + "/_sim/state", timeout=5) as r:
            state: dict[str, Any] = orjson.loads(r.read())
        return state

    def post_webhook(self, body: bytes, secret: bytes | None = None) -> int:
        secret = self.settings.webhook_secret.encode() if secret is None else secret
        request = urllib.request.Request(
            self.gateway + "/v1/payments/webhook",
            data=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def wait_until(check: Callable[[], bool], timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def system(isolated_settings: Settings, tmp_path: Path) -> Iterator[System]:
    found = System(isolated_settings, tmp_path)
    found.processes["agent"] = start_agent(isolated_settings, tmp_path / "agent.log")
    found.start("provider", "provider", "--seed", "11")
    found.start("gateway", "gateway")
    try:
        wait_until(lambda: found.provider_state() is not None, 30, "the provider")
        wait_until(
            lambda: urllib.request.urlopen(found.gateway + "/healthz").status == 200,
            60,
            "the gateway",
        )
        yield found
    finally:
        found.stop_all()


def open_sale(settings: Settings, capacity: int) -> int:
    now_ms = int(time.time() * 1000)
    spec = SectionSpec(
        GA, SectionKind.GENERAL_ADMISSION, capacity=capacity, price_cents=PRICE_CENTS
    )
    send_commands(
        settings,
        [
            CreateShow(
                "create", now_ms, SHOW, 600, 4, (spec,), payment_window_seconds=600
            )
        ],
    )
    return now_ms


def hold_and_checkout(settings: Settings, hold_ids: list[str]) -> None:
    now_ms = int(time.time() * 1000)
    commands: list[Any] = []
    for hold_id in hold_ids:
        buyer = f"buyer-{hold_id}"
        commands.append(PlaceHold(hold_id, now_ms, SHOW, GA, buyer, quantity=1))
        commands.append(Checkout(f"k-{hold_id}", now_ms, SHOW, GA, buyer, hold_id))
    send_commands(settings, commands)


def all_events(settings: Settings) -> list[Event]:
    return read_events(settings, expected=10**9, timeout_seconds=2)


def events_until(
    settings: Settings, done: Callable[[list[Event]], bool], timeout_seconds: float
) -> list[Event]:
    deadline = time.monotonic() + timeout_seconds
    while True:
        events = all_events(settings)
        if done(events) or time.monotonic() > deadline:
            return events


def sold_and_refunded(events: list[Event]) -> tuple[Counter[str], Counter[str]]:
    sold = Counter(e.hold_id for e in events if isinstance(e, TicketsSold))
    refunded = Counter(e.hold_id for e in events if isinstance(e, RefundRequired))
    return sold, refunded


def assert_each_charge_ends_once(system: System, events: list[Event]) -> None:
    """Every charged hold: exactly one sale or exactly one refund, never both."""
    sold, refunded = sold_and_refunded(events)
    charged = system.provider_state()["charged"]
    assert all(n == 1 for n in charged.values()), "a hold was charged twice"
    for hold_id in charged:
        assert (sold[hold_id], refunded[hold_id]) in {(1, 0), (0, 1)}, hold_id
    assert set(sold) <= set(charged), "tickets without a charge"


def event_body(event_id: str, hold_id: str, ok: bool) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded" if ok else "payment.failed",
            "created": int(time.time()),
            "data": {
                "id": f"pay-{hold_id}",
                "metadata": {"hold_id": hold_id, "show_id": SHOW, "section_id": GA},
            },
        }
    )


def test_worker_killed_between_charge_and_record_charges_once_when_restarted(
    system: System,
) -> None:
    settings = system.settings
    open_sale(settings, capacity=10)
    system.behave(timeout_rate=1.0, hang_seconds=60.0, drop_webhook_rate=1.0)
    system.start("payments", "payments", TICKETING_PROVIDER_TIMEOUT_SECONDS="30")

    hold_and_checkout(settings, ["kill-1"])
    wait_until(
        lambda: system.provider_state()["create_calls"].get("kill-1") == 1,
        90,
        "the provider to be called",
    )
    system.kill("payments")
    system.behave(timeout_rate=0.0)
    system.start("payments", "payments")
    events = events_until(
        settings, lambda found: sold_and_refunded(found)[0]["kill-1"] >= 1, 90
    )

    state = system.provider_state()
    assert state["create_calls"]["kill-1"] == 2, "the restarted worker called again"
    assert state["charged"] == {"kill-1": 1}
    assert sold_and_refunded(events)[0] == {"kill-1": 1}
    assert_each_charge_ends_once(system, events)


def test_duplicate_and_reordered_webhooks_sell_each_hold_once_when_signed(
    system: System,
) -> None:
    settings = system.settings
    open_sale(settings, capacity=20)
    system.behave(duplicate_webhooks=2, reorder_seconds=1.0)
    system.start("payments", "payments")
    holds = [f"dup-{n}" for n in range(8)]

    hold_and_checkout(settings, holds)
    events = events_until(
        settings, lambda found: len(sold_and_refunded(found)[0]) >= len(holds), 90
    )
    wait_until(
        lambda: system.provider_state()["webhooks_in_flight"] == 0, 30, "webhooks"
    )
    # Case C3 by hand: one event id three times, then another id for the same hold.
    statuses = [
        system.post_webhook(event_body("evt-c3", "dup-0", True)) for _ in range(3)
    ]
    statuses.append(system.post_webhook(event_body("evt-c3-later", "dup-0", True)))
    # A stale failure after the success changes nothing.
    statuses.append(system.post_webhook(event_body("evt-stale", "dup-1", False)))
    time.sleep(3)
    events = all_events(settings)

    assert statuses == [200] * 5
    state = system.provider_state()
    assert state["webhooks_delivered"] >= 3 * len(holds)
    sold, refunded = sold_and_refunded(events)
    assert sold == dict.fromkeys(holds, 1) and not refunded
    assert not [e for e in events if isinstance(e, HoldReleased)]
    assert_each_charge_ends_once(system, events)


def test_outage_keeps_holds_and_out_of_order_results_end_once_when_it_closes(
    system: System,
) -> None:
    settings = system.settings
    open_sale(settings, capacity=20)
    system.behave(outage=True)
    system.start("payments", "payments")
    holds = [f"out-{n}" for n in range(5)]

    hold_and_checkout(settings, [*holds, "late-1"])
    wait_until(lambda: system.provider_state()["calls_refused"] >= 3, 60, "the outage")
    # While the worker waits, results for late-1 arrive failure first: the
    # failure releases the hold, the success that follows must be refunded.
    assert system.post_webhook(event_body("evt-f", "late-1", False)) == 200
    assert system.post_webhook(event_body("evt-s", "late-1", True)) == 200
    # A forged success is refused and applies nothing.
    forged = system.post_webhook(event_body("evt-x", "out-0", True), b"forged")
    time.sleep(4)
    refused_during_outage = system.provider_state()["calls_refused"]
    during = all_events(settings)

    system.behave(outage=False)
    events = events_until(
        settings,
        lambda found: (
            len(sold_and_refunded(found)[0]) >= len(holds)
            and system.provider_state()["refunds"] != {}
        ),
        90,
    )

    assert forged == 400
    assert not sold_and_refunded(during)[0], "nothing sold while the provider is down"
    # The breaker (3 failures, 1 s open) keeps calls to about one probe a second,
    # where five requests retrying on their own would have made 25 and given up.
    assert refused_during_outage <= 20
    sold, refunded = sold_and_refunded(events)
    assert sold == dict.fromkeys(holds, 1)
    assert refunded == {"late-1": 1}
    state = system.provider_state()
    assert list(state["refunds"]) == ["refund:late-1"]
    assert_each_charge_ends_once(system, events)
