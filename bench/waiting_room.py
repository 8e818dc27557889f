"""Requests per second per core: queue-status polls and admitted holds.

Starts one gateway process (one event loop, so at most one core; pinned to CPU 0
with ``taskset`` when there is one) on loopback, with the waiting room in memory
and a fake command log whose core places every hold at once, so what is measured
is the gateway's own work per request: parsing, pass verification, buckets,
quota, claim and answer (Kafka, Avro and the agent are not in it). Then ``wrk``
(``apt-get install wrk``; pinned to CPU 1) sends, over real HTTP keep-alive
connections:

- ``status``: GET .../waiting-room/status for 1,000 queue tickets in turn;
- ``status-304``: the same with ``If-None-Match`` of the last answer;
- ``holds``: POST .../holds with an admission token (1,000 admitted buyers in
  turn), a fresh Idempotency-Key each time.
- ``healthz``: GET /healthz, the floor aiohttp itself sets on this machine.

The gateway serves on uvloop, as ``ticketing gateway`` does; ``BENCH_LOOP=asyncio``
serves on the standard asyncio loop for comparison. ``BENCH_RUNS=status,healthz``
picks runs. To see where a poll's time goes, profile the gateway while a run
goes: ``BENCH_PROFILE=py-spy`` records it with ``py-spy`` (``pip install
py-spy``) during the first run and writes collapsed stacks to ``PROFILE_PATH`` (sampling
slows the gateway, so that run's figures are not comparable).

The gateway's CPU seconds during each run (from /proc) give requests per
CPU-second, the per-core figure. Not a test: ``python -m bench.waiting_room``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

VISITORS = 1000
DURATION_SECONDS = 10
CONNECTIONS = 64
QUEUE_SHOW = "bench-queue"
HOLD_SHOW = "bench-holds"
PROFILE_PATH = Path(tempfile.gettempdir()) / "bench-waiting-room-profile.txt"


def serve(port: int) -> None:
    """The gateway under test, in this process, until killed."""
    import dataclasses

    from aiohttp import web

    from commands.model import Command, Event, HoldPlaced, RequestHold
    from gateway.app import create_app
    from gateway.book import OutcomeBook
    from gateway.breaker import CircuitBreaker
    from gateway.room_store import MemoryRoomStore
    from gateway.server import ProblemAppRunner
    from gateway.testing import GENEROUS_LIMITS, FakeAvailability, FakeBus, FakeHolds
    from infra.settings import Settings

    def place(command: Command) -> list[Event]:
        if not isinstance(command, RequestHold):
            return []
        return [
            HoldPlaced(
                command.command_id,
                command.issued_at_ms,
                command.command_id,
                command.show_id,
                command.section_id,
                command.buyer_id,
                command.seat_ids,
                command.quantity,
                command.issued_at_ms + 600_000,
            )
        ]

    settings = dataclasses.replace(
        Settings(),
        **{**GENEROUS_LIMITS, "gateway_hold_quota": 1_000_000},
        gateway_pow_base_bits=1,
        gateway_pow_target_joins_per_second=1e9,
    )
    book = OutcomeBook()
    app = create_app(
        settings,
        FakeBus(book, place),
        book,
        FakeAvailability(),
        FakeHolds(),
        CircuitBreaker(),
        room_store=MemoryRoomStore(),
    )

    async def main() -> None:
        runner = ProblemAppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    if os.environ.get("BENCH_LOOP") == "asyncio":
        asyncio.run(main())
    else:
        import uvloop

        uvloop.run(main())


async def join_buyer(
    session: aiohttp.ClientSession, base: str, show: str, n: int
) -> dict[str, Any]:
    """Ask buyer-n (on device-n) for a challenge, solve it and join: the answer."""
    from gateway.pow import solve

    room = f"{base}/v1/shows/{show}/waiting-room"
    headers = {"Device-Id": f"device-{n}", "User-Agent": "bench"}
    buyer = {"buyer_id": f"buyer-{n}"}
    async with session.post(f"{room}/challenge", json=buyer, headers=headers) as asked:
        puzzle = await asked.json()
    solution = solve(puzzle["challenge"], puzzle["difficulty_bits"])
    body = {**buyer, "challenge": puzzle["challenge"], "solution": solution}
    async with session.post(f"{room}/join", json=body, headers=headers) as r:
        return dict(await r.json())


async def open_room(
    session: aiohttp.ClientSession, base: str, show: str, rate: float, opens: float
) -> None:
    """Open a show's waiting room at epoch second ``opens``, letting ``rate``/s in."""
    opens_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(opens)) + "Z"
    url = f"{base}/v1/shows/{show}/waiting-room"
    body = {"opens_at": opens_at, "admit_per_second": rate}
    async with session.put(url, json=body) as response:
        assert response.status == 200, await response.text()


async def admit_all(
    session: aiohttp.ClientSession,
    base: str,
    show: str,
    holders: list[dict[str, Any]],
) -> list[dict[str, str]]:
    """Admission headers of every joined buyer (the room must have let them in)."""
    admitted = []
    for n, joined in enumerate(holders):
        headers = {"Device-Id": f"device-{n}", "Queue-Ticket": joined["queue_ticket"]}
        url = f"{base}/v1/shows/{show}/waiting-room/admission"
        async with session.post(url, headers=headers) as response:
            token = (await response.json())["admission_token"]
        admitted.append(
            {"Admission-Token": token, "Device-Id": f"device-{n}", "n": str(n)}
        )
    return admitted


async def prepare(base: str) -> tuple[list[str], list[dict[str, str]]]:
    """Two rooms: one mostly waiting (for polls), one all admitted (for holds)."""
    opens = time.time() + 2
    async with aiohttp.ClientSession() as session:
        for show, rate in ((QUEUE_SHOW, 20.0), (HOLD_SHOW, 1e6)):
            await open_room(session, base, show, rate, opens)
        tickets = [
            (await join_buyer(session, base, QUEUE_SHOW, n))["queue_ticket"]
            for n in range(VISITORS)
        ]
        holders = [
            await join_buyer(session, base, HOLD_SHOW, n) for n in range(VISITORS)
        ]
        await asyncio.sleep(max(0.0, opens - time.time()) + 1.5)
        admitted = await admit_all(session, base, HOLD_SHOW, holders)
    return tickets, admitted


def lua_status(tickets: list[str], conditional: bool) -> str:
    table = ",".join(f'"{t}"' for t in tickets)
    etag_line = 'wrk.headers["If-None-Match"] = etags[i]' if conditional else ""
    return f"""
tickets = {{{table}}}
etags = {{}}
i = 0
request = function()
  i = i % #tickets + 1
  wrk.headers["Queue-Ticket"] = tickets[i]
  {etag_line if conditional else ""}
  return wrk.format("GET", "/v1/shows/{QUEUE_SHOW}/waiting-room/status")
end
response = function(status, headers, body)
  if headers["ETag"] then etags[i] = headers["ETag"] end
end
"""


def lua_holds(
    admitted: list[dict[str, str]], show: str = HOLD_SHOW, section: str = "ga"
) -> str:
    rows = ",".join(
        f'{{"{a["Admission-Token"]}","{a["Device-Id"]}","buyer-{a["n"]}"}}'
        for a in admitted
    )
    return f"""
buyers = {{{rows}}}
i = 0
k = 0
request = function()
  i = i % #buyers + 1
  k = k + 1
  local b = buyers[i]
  local headers = {{}}
  headers["Admission-Token"] = b[1]
  headers["Device-Id"] = b[2]
  headers["Idempotency-Key"] = "k-" .. k .. "-" .. math.random(1, 1000000000)
  headers["Content-Type"] = "application/json"
  local body = '{{"buyer_id": "' .. b[3] .. '", "quantity": 1}}'
  return wrk.format("POST", "/v1/shows/{show}/sections/{section}/holds", headers, body)
end
"""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, script: str, connections: int, seconds: int) -> str:
    """wrk's output for a run of ``script`` (pinned to CPU 1 when there is one)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        lua.name,
        f"http://127.0.0.1:{port}",
    ]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "1", *command]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(lua.name)


WRK_P50 = r"^\s+50%\s+(\S+)"
WRK_P99 = r"^\s+99%\s+(\S+)"


def wrk_figure(output: str, pattern: str) -> str | None:
    """One figure of wrk's output (the first group of ``pattern``), if there."""
    found = re.search(pattern, output, re.MULTILINE)
    return found.group(1) if found else None


def run_wrk(port: int, script: str, pid: int) -> tuple[float, float, str]:
    """(requests per second, requests per gateway CPU-second, wrk's latency line)."""
    before = cpu_seconds(pid)
    output = wrk(port, script, CONNECTIONS, DURATION_SECONDS)
    used = cpu_seconds(pid) - before
    rate = float(wrk_figure(output, r"Requests/sec:\s+([\d.]+)") or "nan")
    total = int(wrk_figure(output, r"(\d+) requests in") or 0)
    errors = wrk_figure(output, r"Non-2xx or 3xx responses: (\d+)")
    p99 = wrk_figure(output, WRK_P99)
    note = f"p99 {p99 or '?'}"
    if errors:
        note += f", non-2xx {errors}"
    return rate, total / used if used else float("nan"), note


def profile(pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy recording the gateway for most of a run, if BENCH_PROFILE asks."""
    if os.environ.get("BENCH_PROFILE") != "py-spy":
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(DURATION_SECONDS - 2),
            "--format",
            "raw",
            "--output",
            str(PROFILE_PATH),
            "--nonblocking",
        ]
    )


def main() -> int:
    if shutil.which("wrk") is None:
        print("bench: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "bench.waiting_room", "--serve", str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "0", *command]
    server = subprocess.Popen(command)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        tickets, admitted = asyncio.run(prepare(base))
        runs = {
            "status": lua_status(tickets, conditional=False),
            "status-304": lua_status(tickets, conditional=True),
            "holds": lua_holds(admitted),
            "healthz": 'request = function() return wrk.format("GET", "/healthz") end',
        }
        chosen = os.environ.get("BENCH_RUNS")
        if chosen:
            runs = {name: runs[name] for name in chosen.split(",")}
        print(
            f"gateway pid {server.pid} ({os.environ.get('BENCH_LOOP', 'uvloop')} "
            f"loop), {CONNECTIONS} connections, {DURATION_SECONDS} s each, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        for index, (name, script) in enumerate(runs.items()):
            profiler = profile(server.pid) if index == 0 else None
            rate, per_cpu, note = run_wrk(port, script, server.pid)
            if profiler is not None:
                profiler.wait(30)
                print(f"profile of the {name} run: {PROFILE_PATH}")
            print(
                f"{name:<11} {rate:>9.0f} req/s   {per_cpu:>9.0f} req per "
                f"gateway CPU-second   {note}"
            )
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        sys.exit(main())
