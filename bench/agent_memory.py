"""Resident memory of one agent process holding the state of 100,000 seats.

Creates a reserved show of ``SEATS`` seats (sections of 50 rows x 100 seats spread
over the command partitions), holds every seat (two seats per hold), and reads the
agent's resident set size from ``/proc/<pid>/status`` at three points: idle with no
show, after every hold is decided, and after a restart that rebuilds the state from
its RocksDB table. Needs the services: ``ticketing services up``.

Usage: ``python -m bench.agent_memory [SEATS]``; prints the figures and writes
``bench/results/agent-memory.json``.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.agent_throughput import _count_decisions
from commands.model import CreateShow, PlaceHold, Row, SectionKind, SectionSpec
from infra.settings import Settings
from infra.topics import ensure_topics
from tests.integration.support import command_producer, send_commands, start_agent

ROWS = 50
SEATS_PER_ROW = 100
SEATS_PER_HOLD = 2
SETTLE_SECONDS = 5.0
RESULTS = Path(__file__).resolve().parent / "results" / "agent-memory.json"


def _sections(seats: int) -> tuple[SectionSpec, ...]:
    per_section = ROWS * SEATS_PER_ROW
    rows = tuple(
        Row(f"r{r}", tuple(str(n) for n in range(SEATS_PER_ROW))) for r in range(ROWS)
    )
    return tuple(
        SectionSpec(f"s{i}", SectionKind.RESERVED, rows=rows)
        for i in range(seats // per_section)
    )


def _commands(seats: int) -> list[CreateShow | PlaceHold]:
    now_ms = int(time.time() * 1000)
    sections = _sections(seats)
    shows: list[CreateShow | PlaceHold] = [
        CreateShow(f"create-{s.section_id}", now_ms, "mem", 3600, 4, (s,))
        for s in sections
    ]
    holds: list[CreateShow | PlaceHold] = []
    for section in sections:
        seat_ids = section.seat_ids()
        for n in range(0, len(seat_ids), SEATS_PER_HOLD):
            holds.append(
                PlaceHold(
                    f"{section.section_id}-h{n}",
                    now_ms,
                    "mem",
                    section.section_id,
                    f"b{section.section_id}-{n}",
                    seat_ids=seat_ids[n : n + SEATS_PER_HOLD],
                )
            )
    return [*shows, *holds]


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident set size and its peak (VmHWM) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return (
        int(fields["VmRSS"].split()[0]) / 1024,
        int(fields["VmHWM"].split()[0]) / 1024,
    )


def _stop(agent: subprocess.Popen[bytes]) -> None:
    agent.send_signal(signal.SIGTERM)
    agent.wait(60)


def main(seats: int) -> None:
    """Run the benchmark, print the figures and write them to bench/results."""
    run = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        Settings.from_env(),
        topic_prefix=f"bench-mem-{run}",
        agent_id=f"bench-mem-{run}-agent",
        agent_data_dir=tempfile.mkdtemp(prefix="bench-mem-"),
    )
    ensure_topics(settings)
    logs = Path(tempfile.mkdtemp(prefix="bench-mem-logs-"))

    agent = start_agent(settings, logs / "agent-idle.log")
    try:
        time.sleep(20)  # joined its group, tables recovered, nothing to decide
        idle, _ = rss_mb(agent.pid)
    finally:
        _stop(agent)
    print(f"idle agent, no show: {idle:.0f} MB resident", flush=True)

    commands = _commands(seats)
    send_commands(settings, commands, command_producer(settings))
    print(f"{len(commands)} commands on the log ({seats} seats)", flush=True)

    agent = start_agent(settings, logs / "agent-full.log")
    try:
        seen = _count_decisions(settings, len(commands), 900)
        time.sleep(SETTLE_SECONDS)
        full, full_peak = rss_mb(agent.pid)
    finally:
        _stop(agent)
    print(f"decisions on the log: {seen} of {len(commands)}", flush=True)
    print(f"after every seat held: {full:.0f} MB resident (peak {full_peak:.0f})")

    agent = start_agent(settings, logs / "agent-restored.log")
    try:
        # A restart restores the state from its table: a hold for a seat already
        # held must be decided (refused) before the figure is taken.
        first = _sections(seats)[0]
        probe = PlaceHold(
            "probe",
            int(time.time() * 1000),
            "mem",
            first.section_id,
            "probe",
            seat_ids=first.seat_ids()[:1],
        )
        send_commands(settings, [probe], command_producer(settings))
        restored_seen = _count_decisions(settings, len(commands) + 1, 300)
        time.sleep(SETTLE_SECONDS)
        restored, restored_peak = rss_mb(agent.pid)
    finally:
        _stop(agent)
    print(f"decisions after the restart: {restored_seen} of {len(commands) + 1}")
    print(f"after a restart: {restored:.0f} MB resident (peak {restored_peak:.0f})")

    result = {
        "bench": "agent_memory",
        "command": f"python -m bench.agent_memory {seats}",
        "seats": seats,
        "holds": len(commands) - len(_sections(seats)),
        "decisions_seen": seen,
        "decisions_seen_after_restart": restored_seen,
        "idle_rss_mb": round(idle, 1),
        "full_rss_mb": round(full, 1),
        "full_peak_rss_mb": round(full_peak, 1),
        "restored_rss_mb": round(restored, 1),
        "restored_peak_rss_mb": round(restored_peak, 1),
        "target_mb": 200,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "logs": str(logs),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
