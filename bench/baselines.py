"""Our write path beside two classic designs, on one machine, in one run.

Starts PostgreSQL and Redis on loopback (Debian's packages, installed when
missing), then gives every design the same workload: one hot GA section of N
places and M buyers asking for one place each, K at a time (closed loop), each
design bounded by a time limit. Designs: ``postgres`` (row lock on the section
row), ``redis`` (atomic Lua check-and-decrement), ``ours-place`` (PlaceHold to
the section through Kafka and the agent) and ``ours-request`` (RequestHold, the
gateway's path through the buyers' ledger). Prints a table with ratios to
``ours-request`` and writes ``bench/results/baselines.json``. Exits 1 when a
design oversold, 2 when a design failed requests. Kafka must be up
(``ticketing services up``). Usage::

    python -m bench.baselines [--places N] [--buyers M] [--clients K]
        [--time-limit SECONDS] [--pg-connections C] [--pg-port P]
        [--redis-port P] [--designs a,b] [--output FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from bench import baseline_ours, baseline_postgres, baseline_servers
from bench.baseline_load import drive
from bench.baseline_redis import RedisHolds
from bench.baseline_stats import DesignResult, Workload, figures, table
from infra.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "baselines.json"
# TODO(limit): no design goes through the gateway over HTTP (admission tokens,
# rate limits, reply bus); add it when the HTTP hop's share of a hold's latency
# matters, e.g. when the gateway's p99 objective is set against these figures.
# TODO(limit): the load is a closed loop, so a design whose latency has a floor
# (ours: the agent's commit interval) is throughput-bound by K / latency; an
# open-loop arrival rate would show where each design saturates instead.
DESIGNS = ("postgres", "redis", "ours-place", "ours-request")
REFERENCE = "ours-request"
SECTION = "hot"


async def run_postgres(
    server: baseline_servers.PostgresServer, w: Workload, connections: int
) -> Any:
    """Design (a): a pool of connections, one transaction with a row lock per hold.

    With fewer connections than clients, a client waits for a free connection and
    that wait is part of its latency, as behind a connection pooler.
    """
    async with asyncpg.create_pool(
        server.dsn, min_size=connections, max_size=connections
    ) as pool:
        async with pool.acquire() as connection:
            await baseline_postgres.create_schema(connection)
            await baseline_postgres.add_ga_section(connection, SECTION, w.places)

        async def request(buyer: int) -> bool:
            async with pool.acquire() as connection:
                return await baseline_postgres.place_ga_hold(
                    connection, f"h{buyer}", SECTION, f"b{buyer}", 1
                )

        outcome = await drive(request, w)
        async with pool.acquire() as connection:
            stored = await baseline_postgres.held_places(connection, SECTION)
    note = f"{server.version}; {connections} connections"
    return _result("postgres", outcome, stored, w, note)


async def run_redis(server: baseline_servers.RedisServer, w: Workload) -> Any:
    """Design (b): K connections, one Lua script call per hold."""
    client = aioredis.Redis.from_url(server.url, max_connections=w.clients)
    try:
        holds = RedisHolds(client)
        await holds.add_ga_section(SECTION, w.places)

        async def request(buyer: int) -> bool:
            return await holds.place_ga_hold(f"h{buyer}", SECTION, 1)

        outcome = await drive(request, w)
        stored = await holds.held_places(SECTION)
    finally:
        await client.aclose()
    return _result("redis", outcome, stored, w, server.version)


def _result(
    design: str, outcome: Any, stored: int, w: Workload, note: str
) -> DesignResult:
    return DesignResult(
        design=design,
        attempted=outcome.attempted,
        placed=outcome.placed,
        rejected=outcome.rejected,
        errors=outcome.errors,
        stored_holds=stored,
        capacity=w.places,
        seconds=outcome.seconds,
        latencies_seconds=tuple(outcome.latencies_seconds),
        note=note,
    )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("--places", type=int, default=10_000, help="N: GA places")
    parser.add_argument("--buyers", type=int, default=30_000, help="M: buyers")
    parser.add_argument("--clients", type=int, default=64, help="K: concurrency")
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds per design"
    )
    parser.add_argument(
        "--pg-connections", type=int, default=0, help="PostgreSQL pool (0: K)"
    )
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=56379)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


async def _run_all(args: argparse.Namespace, w: Workload) -> list[DesignResult]:
    designs = [d for d in args.designs.split(",") if d]
    unknown = set(designs) - set(DESIGNS)
    if unknown:
        raise SystemExit(f"unknown designs: {sorted(unknown)}; known: {DESIGNS}")
    settings = Settings.from_env()
    pg_connections = args.pg_connections or w.clients
    log_dir = Path(tempfile.mkdtemp(prefix="baselines-logs-"))
    results = []
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(
            baseline_servers.postgres(args.pg_port, max_connections=pg_connections + 10)
        )
        rd = stack.enter_context(baseline_servers.redis(args.redis_port))
        runners: dict[str, Callable[[], Coroutine[Any, Any, DesignResult]]] = {
            "postgres": lambda: run_postgres(pg, w, pg_connections),
            "redis": lambda: run_redis(rd, w),
            "ours-place": lambda: baseline_ours.run(settings, w, "place", log_dir),
            "ours-request": lambda: baseline_ours.run(settings, w, "request", log_dir),
        }
        for design in designs:
            print(f"running {design} ...", flush=True)
            load_before = os.getloadavg()[0]
            result = await runners[design]()
            # Other work on a shared machine skews the figures: keep its trace.
            result = dataclasses.replace(
                result,
                note=f"{result.note}; load average (1 min) before {load_before:.2f},"
                f" after {os.getloadavg()[0]:.2f}".lstrip("; "),
            )
            print(
                f"  {result.placed + result.rejected} answered in "
                f"{result.seconds:.1f} s, {result.errors} errors",
                flush=True,
            )
            results.append(result)
    print(f"agent logs: {log_dir}")
    return results


def _report(
    args: argparse.Namespace, w: Workload, results: list[DesignResult]
) -> dict[str, Any]:
    ours = next((r for r in results if r.design == REFERENCE), None)
    settings = Settings.from_env()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.baselines " + " ".join(sys.argv[1:]),
        "machine": {
            "cores": os.cpu_count(),
            "processor": _cpu_model(),
            "python": platform.python_version(),
        },
        "parameters": {
            "places": w.places,
            "buyers": w.buyers,
            "clients": w.clients,
            "time_limit_seconds": w.time_limit_seconds,
            "postgres_connections": args.pg_connections or w.clients,
        },
        "agent": {
            "commit_interval_seconds": settings.agent_commit_interval_seconds,
            "batch_window_seconds": settings.agent_batch_window_seconds,
            "batch_max_commands": settings.agent_batch_max_commands,
            "command_partitions": settings.command_partitions,
        },
        "reference": REFERENCE if ours else None,
        "designs": [figures(r, ours) for r in results],
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    """Run every design, print and write the figures; the exit code says faults."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    w = Workload(args.places, args.buyers, args.clients, args.time_limit)
    results = asyncio.run(_run_all(args, w))
    ours = next((r for r in results if r.design == REFERENCE), None)

    print(f"\nN={w.places} places, M={w.buyers} buyers, K={w.clients} clients")
    print(table(results, ours))
    report = _report(args, w, results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.output}")

    for result in results:
        if result.attempted < w.buyers:
            print(f"{result.design}: time limit hit after {result.attempted} buyers")
    if any(r.oversold for r in results):
        print("OVERSOLD: a design held more places than the section has")
        return 1
    if any(r.errors for r in results):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
