"""The main job: a real on-sale against the running system, with a report.

It starts what is not running (Kafka, Cassandra, the agent, the projection worker,
the gateway), creates a show with a reserved and a GA section, lets thousands of
simulated buyers hit the gateway over HTTP at once (more buyers than places, many
wanting the same seats), waits for the read model to catch up, and prints what
happened, with oversold counted independently from the event log.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.pow import solve
from infra import processes, services
from infra.settings import Settings
from infra.topics import ensure_topics
from projections.ledger import ShowLedger, audit_show
from projections.reader import connect
from projections.schema import ensure_schema


@dataclass(frozen=True)
class OnsalePlan:
    """The shape of the sale: places, buyers and how hard they collide."""

    reserved_rows: int = 20
    seats_per_row: int = 50
    ga_capacity: int = 2000
    buyers: int = 6000
    hot_rows: int = 5
    max_connections: int = 400
    hold_ttl_seconds: int = 600
    seed: int = 7
    opens_in_seconds: float = 3.0
    admit_per_second: float = 400.0


@dataclass
class BuyerResult:
    """What one buyer got, how long the hold took, and the wait in the room."""

    outcome: str
    latency_seconds: float
    queued_seconds: float = 0.0
    status_polls: int = 0


@dataclass
class Progress:
    """Counters the progress line and the report read."""

    started: int = 0
    finished: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


def show_document(show_id: str, plan: OnsalePlan) -> dict[str, Any]:
    """The admin request that creates the show."""
    rows = [
        {"label": f"R{r + 1}", "seats": [str(n + 1) for n in range(plan.seats_per_row)]}
        for r in range(plan.reserved_rows)
    ]
    return {
        "show_id": show_id,
        "hold_ttl_seconds": plan.hold_ttl_seconds,
        "max_tickets_per_buyer": 4,
        "sections": [
            {"section_id": "stalls", "kind": "reserved", "rows": rows},
            {
                "section_id": "floor",
                "kind": "general_admission",
                "capacity": plan.ga_capacity,
            },
        ],
    }


def buyer_request(index: int, plan: OnsalePlan, rng: random.Random) -> tuple[str, dict]:
    """Section and body of one buyer's hold: front rows are wanted by many."""
    buyer_id = f"buyer-{index}"
    if index % 2 == 0:
        rows = plan.hot_rows if rng.random() < 0.7 else plan.reserved_rows
        row = rng.randrange(rows) + 1
        first = rng.randrange(plan.seats_per_row - 1) + 1
        count = rng.choice((1, 2, 2))
        seats = [f"R{row}-{first + i}" for i in range(count)]
        return "stalls", {"buyer_id": buyer_id, "seat_ids": seats}
    return "floor", {"buyer_id": buyer_id, "quantity": rng.choice((1, 2))}


async def one_buyer(
    session: aiohttp.ClientSession,
    base_url: str,
    show_id: str,
    section_id: str,
    body: dict,
    progress: Progress,
) -> BuyerResult:
    """Queue, then ask for a hold like a mobile client: retry, then poll."""
    progress.started += 1
    queued = time.perf_counter()
    device = f"device-{body['buyer_id']}"
    admission = await _queue(session, base_url, show_id, body["buyer_id"], device)
    if admission is None:
        progress.finished += 1
        progress.outcomes["not-admitted"] += 1
        return BuyerResult("not-admitted", 0.0, time.perf_counter() - queued)
    token, polls = admission
    key = uuid.uuid4().hex
    url = f"{base_url}/v1/shows/{show_id}/sections/{section_id}/holds"
    headers = {"Idempotency-Key": key, "Admission-Token": token, "Device-Id": device}
    started = time.perf_counter()
    outcome = "error"
    for _attempt in range(5):
        try:
            async with session.post(url, json=body, headers=headers) as response:
                payload = await response.json(content_type=None)
                if response.status == 202:
                    outcome = await _poll(session, base_url, response, payload)
                elif response.status in (429, 503):
                    outcome = _outcome_of(response.status, payload)
                    await asyncio.sleep(_retry_after(response))
                    continue
                else:
                    outcome = _outcome_of(response.status, payload)
                break
        except (TimeoutError, aiohttp.ClientError):
            await asyncio.sleep(0.2)
    progress.finished += 1
    progress.outcomes[outcome] += 1
    return BuyerResult(outcome, time.perf_counter() - started, started - queued, polls)


def _retry_after(response: aiohttp.ClientResponse) -> float:
    try:
        return float(response.headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0


async def _queue(
    session: aiohttp.ClientSession,
    base_url: str,
    show_id: str,
    buyer_id: str,
    device: str,
) -> tuple[str, int] | None:
    """Solve the challenge, join, poll as told until admitted: (token, polls)."""
    room = f"{base_url}/v1/shows/{show_id}/waiting-room"
    headers = {"Device-Id": device}
    for _attempt in range(5):
        try:
            async with session.post(
                f"{room}/challenge", json={"buyer_id": buyer_id}, headers=headers
            ) as asked:
                puzzle = await asked.json(content_type=None)
            if asked.status != 201:
                await asyncio.sleep(_retry_after(asked))
                continue
            challenge = puzzle["challenge"]
            solution = solve(challenge, int(puzzle["difficulty_bits"]))
            join = {"buyer_id": buyer_id, "challenge": challenge, "solution": solution}
            async with session.post(
                f"{room}/join", json=join, headers=headers
            ) as joined:
                ticket_body = await joined.json(content_type=None)
            if joined.status == 201:
                return await _wait_for_admission(session, room, ticket_body, headers)
            await asyncio.sleep(_retry_after(joined))
        except (TimeoutError, aiohttp.ClientError):
            await asyncio.sleep(0.2)
    return None


async def _wait_for_admission(
    session: aiohttp.ClientSession,
    room: str,
    joined: dict[str, Any],
    headers: dict[str, str],
) -> tuple[str, int] | None:
    """Poll the status (with its ETag, after its interval), then take the token."""
    ticket = {"Queue-Ticket": joined["queue_ticket"], **headers}
    wait, etag, polls = float(joined["poll_after_seconds"]), None, 0
    state = joined["state"]
    deadline = time.monotonic() + ADMISSION_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if state == "admitted":
            async with session.post(f"{room}/admission", headers=ticket) as admitted:
                answer = await admitted.json(content_type=None)
                if admitted.status == 201:
                    return str(answer["admission_token"]), polls
                wait = _retry_after(admitted)
        await asyncio.sleep(wait)
        conditional = {**ticket, **({"If-None-Match": etag} if etag else {})}
        async with session.get(f"{room}/status", headers=conditional) as polled:
            polls += 1
            wait = _retry_after(polled)
            if polled.status == 200:
                etag = polled.headers.get("ETag")
                state = (await polled.json(content_type=None))["state"]
            else:
                await polled.read()
    return None


ADMISSION_TIMEOUT_SECONDS = 300.0


def _outcome_of(status: int, payload: dict) -> str:
    if status == 201:
        return "held"
    problem_type = str(payload.get("type", "")).rsplit("/", 1)[-1]
    return problem_type or f"http-{status}"


async def _poll(
    session: aiohttp.ClientSession,
    base_url: str,
    response: aiohttp.ClientResponse,
    payload: dict,
) -> str:
    location = response.headers.get("Location") or f"/v1/holds/{payload['hold_id']}"
    for _ in range(60):
        await asyncio.sleep(0.5)
        async with session.get(base_url + location) as polled:
            body = await polled.json(content_type=None)
            if polled.status != 202 and polled.status != 404:
                return _outcome_of(polled.status, body)
    return "pending"


async def report_progress(progress: Progress, total: int, every: float = 1.0) -> None:
    """Print one line per interval while buyers are at work."""
    started = time.monotonic()
    while progress.finished < total:
        await asyncio.sleep(every)
        held = progress.outcomes["held"]
        print(
            f"  {time.monotonic() - started:5.1f} s  buyers done "
            f"{progress.finished}/{total}  held {held}  "
            f"refused {progress.finished - held}",
            flush=True,
        )


def buyer_requests(plan: OnsalePlan) -> list[tuple[str, dict[str, Any]]]:
    """Every buyer's section and hold body, the same for the same seed."""
    rng = random.Random(plan.seed)
    return [buyer_request(i, plan, rng) for i in range(plan.buyers)]


async def run_buyers(
    base_url: str,
    show_id: str,
    plan: OnsalePlan,
    requests: list[tuple[str, dict[str, Any]]],
) -> tuple[list[BuyerResult], float]:
    """All buyers at once; returns their results and the wall time taken."""
    progress = Progress()
    connector = aiohttp.TCPConnector(limit=plan.max_connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        ticker = asyncio.create_task(report_progress(progress, plan.buyers))
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                one_buyer(session, base_url, show_id, section, body, progress)
                for section, body in requests
            )
        )
        elapsed = time.perf_counter() - started
        ticker.cancel()
    return list(results), elapsed


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted values fall."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_line(results: list[BuyerResult]) -> str:
    """p50/p99/max hold latency in milliseconds."""
    values = [r.latency_seconds * 1000 for r in results]
    return (
        f"p50 {percentile(values, 0.50):.0f} ms, p99 {percentile(values, 0.99):.0f} ms"
        f", max {max(values):.0f} ms, mean {statistics.fmean(values):.0f} ms"
    )


def settings_for_run() -> Settings:
    """Settings from the environment (``TICKETING_*``)."""
    return Settings.from_env()


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def _availability(base_url: str, show_id: str) -> dict[str, Any] | None:
    async with aiohttp.ClientSession() as session:
        url = f"{base_url}/v1/shows/{show_id}/availability"
        async with session.get(url) as response:
            if response.status != 200:
                return None
            return dict(await response.json())


async def _open_room(base_url: str, show_id: str, plan: OnsalePlan) -> str:
    """Open the show's waiting room a few seconds from now; its opening time."""
    opens = time.time() + plan.opens_in_seconds
    opens_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(opens)) + "Z"
    body = {"opens_at": opens_at, "admit_per_second": plan.admit_per_second}
    async with aiohttp.ClientSession() as session:
        url = f"{base_url}/v1/shows/{show_id}/waiting-room"
        async with session.put(url, json=body) as response:
            if response.status != 200:
                raise processes.ProcessFailed(
                    f"opening the waiting room answered HTTP {response.status}"
                )
    return opens_at


async def _create_show(base_url: str, document: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/v1/shows", json=document) as response:
            await response.read()
            return response.status


@dataclass
class SaleResult:
    """Everything one on-sale produced, for the report and for tests."""

    show_id: str
    places: int
    contested_seats: int
    results: list[BuyerResult]
    elapsed_seconds: float
    ledger: ShowLedger
    read_model_lag_seconds: float


def run(plan: OnsalePlan) -> int:
    """Run the on-sale end to end and print the report; 0 only for a sound sale."""
    sale = run_sale(plan, settings_for_run())
    print_report(plan, sale)
    problems = sale_problems(sale)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 2 if problems else 0


def sale_problems(sale: SaleResult) -> list[str]:
    """What makes a sale unsound: oversold, unanswered buyers, lost sections."""
    outcomes = Counter(result.outcome for result in sale.results)
    problems = []
    if sale.ledger.oversold:
        problems.append(f"{sale.ledger.oversold} places oversold")
    if sale.ledger.sold_twice or sale.ledger.sold_without_hold:
        problems.append(
            f"{sale.ledger.sold_twice} holds sold twice, "
            f"{sale.ledger.sold_without_hold} sales without a hold"
        )
    unanswered = outcomes["error"] + outcomes["pending"] + outcomes["not-admitted"]
    if unanswered:
        problems.append(f"{unanswered} buyers got no outcome")
    lost = sale.ledger.rejected_by_reason["unknown_section"]
    if lost:
        problems.append(f"{lost} holds refused for a section the show has")
    if not sale.ledger.holds_placed:
        problems.append("no hold was placed")
    return problems


def refuse_if_gateway_port_taken(settings: Settings) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((settings.gateway_host, settings.gateway_port))
        except OSError:
            raise processes.ProcessFailed(
                f"port {settings.gateway_host}:{settings.gateway_port} is taken "
                "(a gateway already running?); stop it, or move this run's "
                "gateway with TICKETING_GATEWAY_PORT"
            ) from None


ONSALE_GATEWAY_ENV = {
    # Every simulated buyer comes from 127.0.0.1: one address, thousands of
    # buyers, so the per-address bucket is opened wide for this run.
    "TICKETING_GATEWAY_IP_REQUESTS_PER_SECOND": "1000000",
    "TICKETING_GATEWAY_IP_BURST": "1000000",
    # The buyers solve their puzzles on the same two cores as the system.
    "TICKETING_GATEWAY_POW_BASE_BITS": "8",
    "TICKETING_GATEWAY_POW_TARGET_JOINS_PER_SECOND": "100000",
}


def gateway_env() -> dict[str, str]:
    """The on-sale's settings of the gateway, unless the environment sets them."""
    return {k: v for k, v in ONSALE_GATEWAY_ENV.items() if k not in os.environ}


def run_sale(plan: OnsalePlan, settings: Settings) -> SaleResult:
    """Start what is missing, run the sale, audit the log; stop our processes."""
    print("== services", flush=True)
    services.up()
    ensure_topics(settings)
    cluster, session = connect(settings)
    ensure_schema(session, settings.cassandra_keyspace)
    cluster.shutdown()

    refuse_if_gateway_port_taken(settings)
    print("== starting agent, projection worker and gateway", flush=True)
    managed = [
        processes.start("agent"),
        processes.start("projection"),
        processes.start("gateway", gateway_env()),
    ]
    base_url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    try:
        return _sale(plan, settings, base_url, managed)
    finally:
        for item in reversed(managed):
            item.stop()


def _sale(
    plan: OnsalePlan,
    settings: Settings,
    base_url: str,
    managed: list[processes.Managed],
) -> SaleResult:
    processes.wait_until(
        "gateway", lambda: _http_ok(f"{base_url}/healthz"), managed, 60
    )
    show_id = f"onsale-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    places = plan.reserved_rows * plan.seats_per_row + plan.ga_capacity
    print(f"== show {show_id}: {places} places, {plan.buyers} buyers", flush=True)
    status = asyncio.run(_create_show(base_url, show_document(show_id, plan)))
    if status not in (201, 202):
        raise processes.ProcessFailed(f"creating the show answered HTTP {status}")
    seconds = processes.wait_until(
        "show in the read model",
        lambda: asyncio.run(_availability(base_url, show_id)) is not None,
        managed,
        120,
    )
    print(f"   show visible in the read model after {seconds:.1f} s", flush=True)
    opens_at = asyncio.run(_open_room(base_url, show_id, plan))
    print(f"   waiting room opens at {opens_at}", flush=True)

    print("== buyers at the gate", flush=True)
    requests = buyer_requests(plan)
    results, elapsed = asyncio.run(run_buyers(base_url, show_id, plan, requests))

    print("== auditing the event log and waiting for the read model", flush=True)
    ledger = audit_show(settings, show_id)
    occupied_in_log = sum(ledger.occupied(s) for s in ledger.capacity_by_section)
    lag_seconds = processes.wait_until(
        "read model catching up",
        lambda: _occupied_in_read_model(base_url, show_id) == occupied_in_log,
        managed,
        120,
    )
    return SaleResult(
        show_id=show_id,
        places=places,
        contested_seats=contested_seats(requests),
        results=results,
        elapsed_seconds=elapsed,
        ledger=ledger,
        read_model_lag_seconds=lag_seconds,
    )


def contested_seats(requests: list[tuple[str, dict[str, Any]]]) -> int:
    """Seats that more than one buyer asked for."""
    wanted = Counter(seat for _, body in requests for seat in body.get("seat_ids", ()))
    return sum(1 for count in wanted.values() if count > 1)


def _occupied_in_read_model(base_url: str, show_id: str) -> int:
    view = asyncio.run(_availability(base_url, show_id)) or {"sections": []}
    return sum(int(s["held"]) + int(s["sold"]) for s in view["sections"])


def print_report(plan: OnsalePlan, sale: SaleResult) -> None:
    """The on-sale report: places, holds, refusals, oversold, latency, throughput."""
    ledger, results = sale.ledger, sale.results
    outcomes = Counter(r.outcome for r in results)
    held_places = sum(ledger.held_by_section.values())
    print("\n== on-sale report")
    print(f"show                   {sale.show_id}")
    print(f"places                 {sale.places}")
    print(
        f"buyers                 {plan.buyers} ({sale.contested_seats} seats contested)"
    )
    print(f"holds placed (gateway) {outcomes['held']}")
    print(f"holds placed (log)     {ledger.holds_placed}, places held {held_places}")
    for reason, count in sorted(ledger.rejected_by_reason.items()):
        print(f"rejected: {reason:<13} {count}")
    for outcome, count in sorted(outcomes.items()):
        if outcome != "held":
            print(f"gateway answer {outcome:<12} {count}")
    print(f"OVERSOLD (event log)   {ledger.oversold}")
    print(f"hold latency           {latency_line(results)}")
    waits = [r.queued_seconds * 1000 for r in results]
    print(
        f"waiting room           p50 {percentile(waits, 0.5) / 1000:.1f} s, "
        f"p99 {percentile(waits, 0.99) / 1000:.1f} s in the queue, "
        f"{sum(r.status_polls for r in results)} status polls"
    )
    throughput = len(results) / sale.elapsed_seconds
    print(f"throughput             {throughput:.0f} buyers/s (queue wait included)")
    print(f"read model caught up   {sale.read_model_lag_seconds:.1f} s after the audit")
