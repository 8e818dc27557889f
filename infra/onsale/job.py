"""The main job, end to end: start what is missing, sell, settle, report.

Kafka and Cassandra already answering on their ports are used as they are
(nothing is started or stopped there); otherwise ``infra.services`` starts them.
The agent, projection worker, gateway, simulated provider and payments worker
are started as processes of their own and stopped at the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from gateway.http import rfc3339_ms
from gateway.passes import read_ticket, ticket_id_for
from gateway.signing import InvalidPass, Keyring
from gateway.waiting_room import queue_key
from infra import processes, services
from infra.onsale import chart, report, text
from infra.onsale.client import Recorder
from infra.onsale.crowd import run_crowd
from infra.onsale.plan import OnsalePlan, crowd, show_document
from infra.onsale.sale_log import SaleLog, read_sale_log
from infra.onsale.visitors import Sale, VisitorResult
from infra.settings import Settings
from infra.topics import ensure_topics
from projections.reader import connect
from projections.schema import ensure_schema

RUN_DIR: Final = Path(__file__).resolve().parents[1] / ".run" / "onsale"
SETTLE_POLL_SECONDS: Final = 5.0

ONSALE_GATEWAY_ENV: Final = {
    # Every simulated visitor comes from 127.0.0.1: one address, thousands of
    # visitors, so the per-address bucket is opened wide for this run.
    "TICKETING_GATEWAY_IP_REQUESTS_PER_SECOND": "1000000",
    "TICKETING_GATEWAY_IP_BURST": "1000000",
    # The visitors solve their puzzles on the same two cores as the system; an
    # account more on a device still costs 2 bits more, up to 16.
    "TICKETING_GATEWAY_POW_BASE_BITS": "8",
    "TICKETING_GATEWAY_POW_MAX_BITS": "16",
    "TICKETING_GATEWAY_POW_TARGET_JOINS_PER_SECOND": "100000",
}


def gateway_env() -> dict[str, str]:
    """The on-sale's settings of the gateway, unless the environment sets them."""
    return {k: v for k, v in ONSALE_GATEWAY_ENV.items() if k not in os.environ}


@dataclass
class SaleRun:
    """What one on-sale produced: the report and where its files are."""

    report: dict[str, Any]
    results: list[VisitorResult]
    sale_log: SaleLog
    report_path: Path
    text_path: Path
    chart_path: Path


def run(plan: OnsalePlan, out: Path | None = None) -> int:
    """Run the on-sale and print the report; 0 only for a sound sale."""
    sale = run_sale(plan, Settings.from_env(), out)
    print()
    print(sale.text_path.read_text())
    print(f"\nreport: {sale.report_path}\ntext:   {sale.text_path}")
    print(f"chart:  {sale.chart_path}")
    for problem in sale.report["problems"]:
        print(f"PROBLEM: {problem}")
    return 2 if sale.report["problems"] else 0


def run_sale(plan: OnsalePlan, settings: Settings, out: Path | None = None) -> SaleRun:
    """Start what is missing, run the sale, settle, report; stop our processes."""
    load_before = os.getloadavg()
    started = time.monotonic()
    print("== services", flush=True)
    adopt_or_start_services(settings)
    ensure_topics(settings)
    cluster, session = connect(settings)
    ensure_schema(session, settings.cassandra_keyspace)
    cluster.shutdown()

    refuse_if_port_taken(
        settings.gateway_host, settings.gateway_port, "TICKETING_GATEWAY_PORT"
    )
    refuse_if_port_taken(
        settings.provider_host, settings.provider_port, "TICKETING_PROVIDER_PORT"
    )
    print("== starting agent, projection, gateway, provider, payments", flush=True)
    managed = [
        processes.start("agent"),
        processes.start("projection"),
        processes.start("gateway", gateway_env()),
        processes.start("provider"),
        processes.start("payments"),
    ]
    try:
        return _sale(plan, settings, managed, out, load_before, started)
    finally:
        print("== stopping our processes", flush=True)
        for item in reversed(managed):
            item.stop()


def adopt_or_start_services(settings: Settings) -> None:
    """Use Kafka and Cassandra as they are if both answer; else start them."""
    if services.kafka_answers(settings) and services.cassandra_answers(settings):
        print(
            f"   Kafka {settings.kafka_bootstrap} and Cassandra "
            f"{settings.cassandra_host}:{settings.cassandra_port} already answer: "
            "using them as they are",
            flush=True,
        )
        return
    services.up()


def refuse_if_port_taken(host: str, port: int, setting: str) -> None:
    """Stop before starting a process on a port something else holds."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise processes.ProcessFailed(
                f"port {host}:{port} is taken (a process of an earlier run?); "
                f"stop what holds it, or move this run's with {setting}"
            ) from None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _sale(
    plan: OnsalePlan,
    settings: Settings,
    managed: list[processes.Managed],
    out: Path | None,
    load_before: tuple[float, float, float],
    started: float,
) -> SaleRun:
    base_url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    provider_url = f"http://{settings.provider_host}:{settings.provider_port}"
    processes.wait_until(
        "gateway", lambda: _http_ok(f"{base_url}/healthz"), managed, 90
    )
    processes.wait_until(
        "provider", lambda: _http_ok(f"{provider_url}/_sim/state"), managed, 60
    )
    asyncio.run(_put(f"{provider_url}/_sim/behaviour", plan.provider.behaviour()))

    show_id = f"onsale-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    print(
        f"== show {show_id}: {plan.places} places "
        f"({plan.reserved_places} reserved in {plan.reserved_sections} sections, "
        f"{plan.ga_capacity} GA), {plan.humans} humans, {plan.bots} bot sessions",
        flush=True,
    )
    document = show_document(show_id, plan)
    status = asyncio.run(_post(f"{base_url}/v1/shows", document))
    if status not in (201, 202):
        raise processes.ProcessFailed(f"creating the show answered HTTP {status}")
    seconds = processes.wait_until(
        "show in the read model",
        lambda: (
            asyncio.run(_get_status(f"{base_url}/v1/shows/{show_id}/availability"))
            == 200
        ),
        managed,
        180,
    )
    print(f"   show in the read model after {seconds:.1f} s", flush=True)
    opens_at = time.time() + plan.opens_in_seconds
    room = {
        "opens_at": rfc3339_ms(int(opens_at * 1000)),
        "admit_per_second": plan.admit_per_second,
    }
    url = f"{base_url}/v1/shows/{show_id}/waiting-room"
    if asyncio.run(_put(url, room)) != 200:
        raise processes.ProcessFailed("opening the waiting room failed")
    opens_at = int(opens_at * 1000) / 1000
    print(f"   waiting room opens at {room['opens_at']}", flush=True)
    setup_seconds = time.monotonic() - started

    print("== visitors arrive", flush=True)
    sections = {s["section_id"]: s["kind"] == "reserved" for s in document["sections"]}
    crowd_started = time.monotonic()
    sale = Sale(
        show_id=show_id,
        plan=plan,
        opens_at=opens_at,
        deadline=time.time() + plan.max_seconds,
        recorder=Recorder(),
        sections=sections,
    )
    results = asyncio.run(run_crowd(base_url, sale, crowd(plan)))
    crowd_seconds = time.monotonic() - crowd_started

    print("== settling payments and webhooks, reading the log", flush=True)
    settle_started = time.monotonic()
    sale_log, provider_state = _settle(settings, show_id, provider_url, plan, managed)
    durations = {
        "setup": setup_seconds,
        "visitors": crowd_seconds,
        "settle": time.monotonic() - settle_started,
    }
    inputs = report.SaleInputs(
        show_id=show_id,
        plan=plan,
        opens_at=opens_at,
        results=results,
        recorder=sale.recorder,
        sale_log=sale_log,
        provider_state=provider_state,
        positions=sale.positions,
        queue_key=_queue_key_of(settings, show_id, int(opens_at * 1000)),
        durations_seconds=durations,
        load_before=load_before,
        stolen_tokens_accepted=sale.progress["stolen token accepted"],
        driver_lag_seconds_max=sale.driver_lag_seconds,
    )
    return _write(inputs, out or RUN_DIR / show_id, results, sale_log)


def _settle(
    settings: Settings,
    show_id: str,
    provider_url: str,
    plan: OnsalePlan,
    managed: list[processes.Managed],
) -> tuple[SaleLog, dict[str, Any]]:
    """Wait (bounded) until no webhook is on its way and every charge is settled
    in the log; the log and the provider's state as they are then."""
    deadline = time.monotonic() + plan.settle_seconds
    while True:
        for item in managed:
            item.check_alive()
        state = asyncio.run(_get_json(f"{provider_url}/_sim/state"))
        sale_log = read_sale_log(settings, show_id)
        figures = report.provider_figures(state, show_id, sale_log)
        open_work = (
            state.get("webhooks_in_flight", 0)
            + figures["charged_without_tickets"]
            + figures["processing"]
            + len(sale_log.paid_without_tickets())
        )
        if open_work == 0 or time.monotonic() > deadline:
            return sale_log, state
        print(f"   {open_work} payments or webhooks still on their way", flush=True)
        time.sleep(SETTLE_POLL_SECONDS)


def _queue_key_of(settings: Settings, show_id: str, opens_at_ms: int) -> Any:
    """The exact place on the room's axis of a visitor's queue ticket."""
    keyring = Keyring.parse(settings.gateway_signing_keys)
    secret = settings.gateway_queue_secret.encode()

    def key(result: VisitorResult) -> float | None:
        if result.queue_ticket is None:
            return None
        try:
            ticket = read_ticket(keyring, result.queue_ticket, show_id, 0, 0)
        except InvalidPass:
            return None
        ticket_id = ticket_id_for(secret, show_id, ticket.buyer_id)
        return queue_key(secret, show_id, ticket_id, ticket.joined_at_ms, opens_at_ms)

    return key


def _write(
    inputs: report.SaleInputs,
    out: Path,
    results: list[VisitorResult],
    sale_log: SaleLog,
) -> SaleRun:
    document = report.build(inputs)
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.json"
    report_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    text_path = out / "report.txt"
    text_path.write_text(text.render(document) + "\n")
    chart_path = chart.write_chart(document, out / "timeline.png")
    return SaleRun(document, results, sale_log, report_path, text_path, chart_path)


async def _post(url: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as response:
            await response.read()
            return response.status


async def _put(url: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.put(url, json=body) as response:
            await response.read()
            return response.status


async def _get_status(url: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            await response.read()
            return response.status


async def _get_json(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return dict(await response.json())
